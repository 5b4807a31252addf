"""The engine: bit-for-bit reproducibility across batches, OOM halving, memory-aware sizes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from synscale.shards import decode_png
from synscale_generator.backends import BackendSettings, SamplingParams, entry_for
from synscale_generator.backends.diffusers_backends import denoiser_of
from synscale_generator.embedded.testing import tiny_adapter
from synscale_generator.engine import Engine, ImageRequest, is_out_of_memory

MIXED = [ImageRequest("a photo of a shirt", 11), ImageRequest("a dog", 12), ImageRequest("bag", 13),
         ImageRequest("the coat", 14), ImageRequest("cat", 15)]


def images(engine: Engine, backend: Any, params: SamplingParams, requests: list[ImageRequest],
           **kw: Any) -> list[np.ndarray]:
    return [im for b in engine.run(backend, params, requests, output_type="np", **kw) for im in b.images]


def sd_backend(tiny_dir: Callable[[str], Path]) -> Any:
    return entry_for("sd").load(BackendSettings.create("sd", str(tiny_dir("sd")), "cpu"))


@pytest.mark.parametrize("family", ["standin", "sd", "amused"])
def test_image_is_bit_identical_alone_and_inside_a_mixed_batch(
    family: str, tiny_dir: Callable[[str], Path],
) -> None:
    """Float outputs (before 8-bit rounding) of one request equal, whatever its companions."""
    if family == "standin":
        backend, params = tiny_adapter(), SamplingParams(2.0, 3)
    else:
        backend = entry_for(family).load(BackendSettings.create(family, str(tiny_dir(family)), "cpu"))
        params = SamplingParams(3.0, 2, "blurry", 8 if family == "amused" else 16)
    engine = Engine("cpu", default_batch_size=4)
    alone = images(engine, backend, params, [MIXED[2]])[0]
    mixed = images(engine, backend, params, MIXED)  # batches [0:4] and [4:5]: MIXED[2] sits at 2
    shifted = images(engine, backend, params, [MIXED[4], MIXED[2]])  # now at position 1
    assert alone.dtype == np.float32
    assert np.array_equal(alone, mixed[2])
    assert np.array_equal(alone, shifted[1])
    assert not np.array_equal(mixed[0], mixed[1])


def test_png_bytes_match_and_are_encoded_off_the_sampling_thread() -> None:
    engine = Engine("cpu", default_batch_size=4)
    backend = tiny_adapter()
    params = SamplingParams(2.0, 2)
    batches = list(engine.run(backend, params, MIXED))
    pngs = [f.result() for b in batches for f in b.pngs]
    alone = next(iter(engine.run(backend, params, [MIXED[3]]))).pngs[0].result()
    assert pngs[3] == alone
    decoded = decode_png(pngs[0], mode="L", size=(32, 32))
    assert np.array_equal(np.asarray(decoded), np.asarray(batches[0].images[0]))
    assert [b.batch_size for b in batches] == [4, 4]


class OomAbove:
    """Raises an OOM from the UNet's forward when it sees more than `limit` rows."""

    def __init__(self, limit: int, error: Callable[[str], BaseException]) -> None:
        self.limit, self.error, self.sizes = limit, error, []  # type: ignore[var-annotated]

    def __call__(self, _module: Any, args: tuple[Any, ...]) -> None:
        self.sizes.append(args[0].shape[0])
        if args[0].shape[0] > self.limit:
            raise self.error("CUDA out of memory. Tried to allocate 2.00 GiB")


@pytest.mark.parametrize("error", [torch.OutOfMemoryError, RuntimeError])
def test_out_of_memory_halves_the_batch_and_finishes(
    error: Callable[[str], BaseException], tiny_dir: Callable[[str], Path],
) -> None:
    backend = sd_backend(tiny_dir)
    params = SamplingParams(2.0, 1, "", 16)
    requests = [*MIXED, MIXED[0]]  # 6 images
    reference = images(Engine("cpu", default_batch_size=2), backend, params, requests)
    hook = OomAbove(4, error)  # CFG doubles rows: batch 2 -> 4 rows fits, batch 4 -> 8 does not
    handle = denoiser_of(backend.pipe).register_forward_pre_hook(hook)
    try:
        engine = Engine("cpu", default_batch_size=8)
        batches = list(engine.run(backend, params, requests, output_type="np"))
    finally:
        handle.remove()
    assert [b.batch_size for b in batches] == [2] * 3
    assert hook.sizes[:2] == [16, 8]  # tried 8, then 4, then settled at 2
    got = [im for b in batches for im in b.images]
    assert all(np.array_equal(a, b) for a, b in zip(got, reference, strict=True))
    assert engine.batch_size(backend, params, 8) == 2  # the limit is remembered


def test_out_of_memory_at_batch_one_and_other_errors_propagate(tiny_dir: Callable[[str], Path]) -> None:
    backend = sd_backend(tiny_dir)
    params = SamplingParams(2.0, 1, "", 16)
    handle = denoiser_of(backend.pipe).register_forward_pre_hook(OomAbove(0, torch.OutOfMemoryError))
    try:
        with pytest.raises(torch.OutOfMemoryError):
            list(Engine("cpu", default_batch_size=4).run(backend, params, MIXED))
    finally:
        handle.remove()
    assert is_out_of_memory(RuntimeError("CUDA error: out of memory"))
    assert not is_out_of_memory(RuntimeError("shape mismatch"))


def test_batch_size_is_capped_by_memory_as_a_power_of_two(monkeypatch: pytest.MonkeyPatch) -> None:
    import synscale_generator.engine as engine_module

    backend = tiny_adapter()
    params = SamplingParams(2.0, 2)  # guided: the stand-in estimates 8 MiB per image
    engine = Engine("cpu", default_batch_size=64, memory_fraction=1.0)
    monkeypatch.setattr(engine_module, "_available_bytes", lambda _d: 100 * 1024 * 1024)
    assert engine.batch_size(backend, params) == 8  # 12 fit, rounded down to 8
    assert engine.batch_size(backend, params, requested=4) == 4
    monkeypatch.setattr(engine_module, "_available_bytes", lambda _d: 1024)
    assert engine.batch_size(backend, params) == 1
