"""Tiny, fast stand-ins for tests: a random small UNet and a hash-based text encoder.

Tests of the sampler, the trainer and the engine do not need the real MiniLM (10 s to
load on a busy 2-core CPU) or the trained weights; they need the same code paths with
deterministic inputs. The hash encoder gives every distinct prompt a fixed unit vector
and "" the zero null token, exactly like `TextEncoder` does.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from .backend import EmbeddedBackend
from .model import TEXT_DIM, TINY_CONFIG, ModelConfig, ScheduleConfig, build_unet
from .text import TextEncoder
from .weights import LoadedModel

if TYPE_CHECKING:  # the adapter imports this package: no import cycle at run time
    from synscale_generator.backends.base import BackendSettings
    from synscale_generator.backends.embedded import EmbeddedAdapter


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


def tiny_adapter(settings: BackendSettings | None = None, seed: int = 0) -> EmbeddedAdapter:
    """The generator's test double: the production serving path (`EmbeddedAdapter` over
    `EmbeddedBackend`) on `tiny_model(seed)` and the hash encoder — diffusers'
    `get_dummy_components` idea: the same code, a tiny random model, no second copy."""
    from synscale_generator.backends.base import BackendSettings
    from synscale_generator.backends.embedded import EmbeddedAdapter

    s = settings or BackendSettings("embedded")
    inner = tiny_backend(seed, device=s.device, scheduler=s.scheduler or "ddim", eta=s.eta_or(1.0))
    return EmbeddedAdapter(s, inner=inner)


def register_tiny(name: str) -> None:
    """Register `tiny_adapter` as backend `name` (tests and benchmarks)."""
    from synscale_generator.backends import BackendEntry, register_backend

    register_backend(name, BackendEntry(check=lambda _s: None, load=tiny_adapter,
                                        description="the embedded serving path on a tiny random UNet",
                                        default_steps=2))
