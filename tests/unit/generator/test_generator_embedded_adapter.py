"""The embedded model behind the engine: per-image reproducibility and batch-free prompt embeddings."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
import torch

from synscale.errors import InvalidInput
from synscale_generator.backends import BackendSettings, SamplingParams
from synscale_generator.backends.embedded import EmbeddedAdapter
from synscale_generator.engine import Engine, ImageRequest

testing = pytest.importorskip("synscale_generator.embedded.testing")


class RecordingEncoder(testing.HashTextEncoder):  # type: ignore[misc,name-defined]
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[list[str]] = []

    def encode(self, prompts: Sequence[str]) -> torch.Tensor:
        self.calls.append(list(prompts))
        return super().encode(prompts)


def adapter(encoder: object | None = None, dtype: str = "") -> EmbeddedAdapter:
    from synscale_generator.embedded.backend import EmbeddedBackend

    inner = EmbeddedBackend(model=testing.tiny_model(0), encoder=encoder or testing.HashTextEncoder())
    return EmbeddedAdapter(BackendSettings.create("embedded", dtype=dtype), inner=inner)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_embedded_image_is_identical_alone_and_in_a_mixed_batch(dtype: str) -> None:
    backend, params = adapter(dtype=dtype), SamplingParams(2.0, 3)
    requests = [ImageRequest(p, s) for p, s in [("T-shirt", 1), ("a photo of a bag", 2), ("coat", 3)]]
    engine = Engine("cpu", default_batch_size=4)
    alone = next(iter(engine.run(backend, params, [requests[1]]))).pngs[0].result()
    mixed = [f.result() for b in engine.run(backend, params, requests) for f in b.pngs]
    assert mixed[1] == alone and mixed[0] != mixed[1]
    image = next(iter(engine.run(backend, params, requests[:1], output_type="np"))).images[0]
    assert image.shape == (32, 32) and image.dtype == np.float32


def test_each_prompt_is_embedded_alone_before_the_batch() -> None:
    encoder = RecordingEncoder()
    adapter(encoder).generate(["bag", "a coat", "bag"], [1, 2, 3], cfg=2.0, steps=1, negative_prompt="")
    firsts = encoder.calls[:3]
    assert firsts == [["bag"], ["a coat"], [""]]


def test_embedded_makes_only_32_pixel_images() -> None:
    with pytest.raises(InvalidInput, match=r"generator\.resolution"):
        adapter().generate(["bag"], [1], cfg=1.0, steps=1, resolution=64)


def test_bfloat16_autocast_changes_only_the_last_bits() -> None:
    params = SamplingParams(2.0, 3)
    request = [ImageRequest("a photo of a bag", 7)]
    engine = Engine("cpu", default_batch_size=2)
    full, half = (next(iter(engine.run(adapter(dtype=d), params, request, output_type="np"))).images[0]
                  for d in ("float32", "bfloat16"))
    assert not np.array_equal(full, half)  # bf16 really ran
    assert np.abs(full - half).mean() < 0.05
