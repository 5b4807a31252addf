"""Tiny, fast stand-ins for tests: a random small UNet and a hash-based text encoder.

Tests of the sampler, the trainer and the engine do not need the real MiniLM (10 s to
load on a busy 2-core CPU) or the trained weights; they need the same code paths with
deterministic inputs. The hash encoder gives every distinct prompt a fixed unit vector
and "" the zero null token, exactly like `TextEncoder` does.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import torch

from .backend import EmbeddedBackend
from .model import TEXT_DIM, TINY_CONFIG, ModelConfig, ScheduleConfig, build_unet
from .text import TextEncoder
from .weights import LoadedModel


class HashTextEncoder(TextEncoder):
    """A deterministic 384-d unit vector per prompt, derived from its sha256."""

    def encode(self, prompts: Sequence[str]) -> torch.Tensor:
        rows = []
        for p in prompts:
            if not p.strip():
                rows.append(torch.zeros(TEXT_DIM))
                continue
            seed = int.from_bytes(hashlib.sha256(p.encode()).digest()[:8], "big") >> 1
            v = torch.randn(TEXT_DIM, generator=torch.Generator().manual_seed(seed))
            rows.append(v / v.norm())
        return torch.stack(rows)


def tiny_model(seed: int = 0, config: ModelConfig = TINY_CONFIG) -> LoadedModel:
    """A randomly initialised UNet of the embedded architecture, a few hundred KB."""
    torch.manual_seed(seed)
    unet = build_unet(config).eval().requires_grad_(False)
    return LoadedModel(unet=unet, model_config=config, schedule=ScheduleConfig(), info={})


def tiny_backend(seed: int = 0, **kwargs: object) -> EmbeddedBackend:
    """`EmbeddedBackend` over `tiny_model(seed)` and `HashTextEncoder` (kwargs passed on)."""
    return EmbeddedBackend(model=tiny_model(seed), encoder=HashTextEncoder(), **kwargs)  # type: ignore[arg-type]
