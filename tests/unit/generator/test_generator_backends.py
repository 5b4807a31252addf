"""Each diffusers family loads from a saved directory and generates reproducible images."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from synscale.errors import InvalidInput
from synscale_generator.backends import BackendSettings, ModelCache, entry_for
from synscale_generator.backends.diffusers_backends import denoiser_of

# (family, resolution): aMUSEd's tiny VQ model works on 8x8 images
FAMILIES = [("sd", 16), ("sdxl", 16), ("deepfloyd_if", 16), ("amused", 8)]
PROMPTS = ["a photo of a shirt", "a dog"]
PIPELINE_CLASSES = {"sd": "StableDiffusionPipeline", "sdxl": "StableDiffusionXLPipeline",
                    "deepfloyd_if": "IFPipeline", "amused": "AmusedPipeline"}


def settings(family: str, path: Path, **kw: object) -> BackendSettings:
    return BackendSettings.create(family, str(path), "cpu", **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(("family", "resolution"), FAMILIES)
def test_family_loads_from_directory_and_generates(
    family: str, resolution: int, tiny_dir: Callable[[str], Path],
) -> None:
    backend = entry_for(family).load(settings(family, tiny_dir(family)))
    images = backend.generate(PROMPTS, [1, 2], cfg=3.0, steps=2, negative_prompt="blurry",
                              resolution=resolution)
    assert [im.size for im in images] == [(resolution, resolution)] * 2
    assert {im.mode for im in images} == {"RGB"}
    again = backend.generate(PROMPTS[:1], [1], cfg=3.0, steps=2, negative_prompt="blurry",
                             resolution=resolution)
    assert np.array_equal(np.asarray(again[0]), np.asarray(images[0])), "same prompt+seed, other image"
    other = backend.generate(PROMPTS[:1], [99], cfg=3.0, steps=2, negative_prompt="blurry",
                             resolution=resolution, output_type="np")
    assert not np.array_equal(other[0], np.asarray(images[0]) / 255.0), "seed had no effect"
    assert backend.describe()["pipeline"] == PIPELINE_CLASSES[family]


def test_unguided_cfg_skips_the_unconditional_branch(tiny_dir: Callable[[str], Path]) -> None:
    """CFG <= 1 means unguided: the UNet sees one copy of the batch, not two."""
    backend = entry_for("sd").load(settings("sd", tiny_dir("sd")))
    unet = denoiser_of(backend.pipe)
    seen: list[int] = []
    handle = unet.register_forward_pre_hook(lambda _m, args: seen.append(args[0].shape[0]))
    try:
        backend.generate(PROMPTS, [1, 2], cfg=1.0, steps=1, resolution=16)
        backend.generate(PROMPTS, [1, 2], cfg=0.5, steps=1, resolution=16)
        backend.generate(PROMPTS, [1, 2], cfg=2.0, steps=1, resolution=16)
    finally:
        handle.remove()
    assert seen == [2, 2, 4]


def test_auto_backend_picks_the_family_and_schedulers_share_one_load(
    tiny_dir: Callable[[str], Path],
) -> None:
    cache = ModelCache()
    path = tiny_dir("sd")
    auto = cache.get(settings("auto", path))
    euler = cache.get(settings("sd", path, scheduler="euler"))
    plain = cache.get(settings("sd", path))
    assert cache.get(settings("sd", path)) is plain  # cached per settings
    assert auto.describe()["pipeline"] == "StableDiffusionPipeline"
    assert euler.describe()["scheduler"] == "EulerDiscreteScheduler"
    assert plain.describe()["scheduler"] == "DDIMScheduler"
    assert denoiser_of(euler.pipe) is denoiser_of(plain.pipe), "another scheduler reloaded the model"
    assert len(cache.loaded()) == 3
    images = euler.generate(["shirt"], [5], cfg=2.0, steps=2, resolution=16)
    assert images[0].size == (16, 16)


def test_deepfloyd_if_stage_two_upsamples(tiny_dir: Callable[[str], Path]) -> None:
    stage2 = tiny_dir("deepfloyd_if_stage2")
    stage1 = stage2.parent / "deepfloyd_if_s1"
    backend = entry_for("deepfloyd_if").load(
        settings("deepfloyd_if", stage1, options={"stage2_path": str(stage2), "stage2_steps": "2"}))
    images = backend.generate(PROMPTS, [3, 4], cfg=2.0, steps=2, resolution=8)
    assert [im.size for im in images] == [(16, 16)] * 2  # stage II's sample size
    assert backend.describe()["stage2"] == str(stage2)


def test_amused_rejects_diffusion_schedulers(tiny_dir: Callable[[str], Path]) -> None:
    with pytest.raises(InvalidInput, match=r"generator\.scheduler"):
        entry_for("amused").check(settings("amused", tiny_dir("amused"), scheduler="ddim"))


def test_bfloat16_and_channels_last_options(tiny_dir: Callable[[str], Path]) -> None:
    import torch

    backend = entry_for("sd").load(settings("sd", tiny_dir("sd"), dtype="bfloat16",
                                            options={"channels_last": "true"}))
    unet = denoiser_of(backend.pipe)
    assert unet.dtype == torch.bfloat16
    assert unet.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    images = backend.generate(["shirt"], [1], cfg=2.0, steps=1, resolution=16)
    assert images[0].size == (16, 16)
