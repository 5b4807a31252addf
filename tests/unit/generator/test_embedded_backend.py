"""The embedded sampler: per-image reproducibility, guidance paths, schedulers, bad input."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from synscale.errors import InvalidInput, PreconditionFailed
from synscale_generator.embedded.backend import ROW_MULTIPLE, EmbeddedBackend
from synscale_generator.embedded.testing import HashTextEncoder, tiny_backend

PROMPTS = ["a photo of a bag", "sneaker", "dress, a one-piece garment", "coat", "T-shirt"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def backend() -> EmbeddedBackend:
    return tiny_backend()


def _sample(b: EmbeddedBackend, prompts: list[str], seeds: list[int], cfg: float, steps: int = 4):
    return b.sample_pixels(prompts, seeds, cfg, steps)


@pytest.mark.parametrize("cfg", [0.0, 3.0])
@pytest.mark.parametrize("scheduler", ["ddim", "dpm"])
def test_image_is_bit_exact_whatever_the_batch(scheduler: str, cfg: float) -> None:
    """Image i depends on (prompt i, seed i) only: alone, mid-batch and in a large batch."""
    b = tiny_backend(scheduler=scheduler)
    target_prompt, target_seed = "a pair of trousers", 1234
    alone = _sample(b, [target_prompt], [target_seed], cfg)[0]
    small = _sample(b, [*PROMPTS[:3], target_prompt, PROMPTS[3]], [5, 6, 7, target_seed, 8], cfg)[3]
    many_prompts = [PROMPTS[i % 5] for i in range(2 * ROW_MULTIPLE + 3)]
    many_seeds = list(range(100, 100 + len(many_prompts)))
    many_prompts[40], many_seeds[40] = target_prompt, target_seed
    large = _sample(b, many_prompts, many_seeds, cfg)[40]
    assert torch.equal(alone, small)
    assert torch.equal(alone, large)
    # and the batch neighbours did get different images
    assert not torch.equal(alone, _sample(b, [target_prompt], [target_seed + 1], cfg)[0])


def test_max_batch_split_gives_same_images(backend: EmbeddedBackend) -> None:
    split = tiny_backend(max_batch=2)
    seeds = [11, 12, 13, 14, 15]
    a = [np.asarray(im) for im in backend.generate(PROMPTS, seeds, 2.0, 3)]
    b = [np.asarray(im) for im in split.generate(PROMPTS, seeds, 2.0, 3)]
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_outputs_are_32x32_greyscale(backend: EmbeddedBackend) -> None:
    images = backend.generate(PROMPTS, list(range(5)), 2.0, 3)
    assert len(images) == 5
    assert all(im.mode == "L" and im.size == (32, 32) for im in images)


def test_unguided_skips_the_unconditional_pass(backend: EmbeddedBackend, monkeypatch) -> None:
    rows: list[int] = []
    real = backend._unet

    def spy(sample, t, context):
        rows.append(sample.shape[0])
        return real(sample, t, context)

    monkeypatch.setattr(backend, "_unet", spy)
    seeds = [1, 2, 3]
    unguided = _sample(backend, PROMPTS[:3], seeds, 1.0, steps=2)
    assert rows == [3, 3]
    rows.clear()
    below_one = _sample(backend, PROMPTS[:3], seeds, 0.5, steps=2)
    assert rows == [3, 3]
    assert torch.equal(unguided, below_one)
    rows.clear()
    guided = _sample(backend, PROMPTS[:3], seeds, 2.0, steps=2)
    assert rows == [6, 6]
    assert not torch.equal(unguided, guided)


def test_negative_prompt_changes_guided_images(backend: EmbeddedBackend) -> None:
    plain = _sample(backend, PROMPTS[:2], [1, 2], 3.0)
    negative = backend.sample_pixels(PROMPTS[:2], [1, 2], 3.0, 4, negative_prompt="blurry")
    assert not torch.equal(plain, negative)


def test_deterministic_ddim_ignores_per_step_noise() -> None:
    """eta=0 adds no noise after the start, so it differs from the stochastic default."""
    eta0 = tiny_backend(eta=0.0)
    eta1 = tiny_backend(eta=1.0)
    a = _sample(eta0, PROMPTS[:2], [1, 2], 2.0)
    assert torch.equal(a, _sample(eta0, PROMPTS[:2], [1, 2], 2.0))
    assert not torch.equal(a, _sample(eta1, PROMPTS[:2], [1, 2], 2.0))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"cfg": math.nan}, "cfg"),
        ({"cfg": -1.0}, "cfg"),
        ({"steps": 0}, "steps"),
        ({"seeds": [1]}, "seeds"),
        ({"seeds": [-1, 2]}, "seeds"),
    ],
)
def test_bad_sampling_input_names_the_field(backend: EmbeddedBackend, kwargs, field: str) -> None:
    call = {"prompts": ["bag", "coat"], "seeds": [1, 2], "cfg": 2.0, "steps": 2, **kwargs}
    with pytest.raises(InvalidInput) as info:
        backend.generate(**call)
    assert info.value.field == field


def test_bad_backend_options_name_the_field() -> None:
    with pytest.raises(InvalidInput, match="scheduler"):
        tiny_backend(scheduler="euler")
    with pytest.raises(InvalidInput, match="eta"):
        tiny_backend(eta=2.0)


def test_missing_weights_name_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "embedded_t2i.safetensors"
    with pytest.raises(PreconditionFailed, match=str(missing)):
        EmbeddedBackend(weights=missing, encoder=HashTextEncoder())


def test_describe_reports_sampler(backend: EmbeddedBackend) -> None:
    facts = backend.describe()
    assert facts["backend"] == "embedded"
    assert facts["scheduler"] == "ddim" and facts["eta"] == "1"
    assert int(facts["parameters"]) > 0
