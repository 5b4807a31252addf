"""What every text-to-image backend offers the engine, and the settings it is built from.

A backend turns (prompts, one seed per prompt, CFG, steps) into images, where image i
depends only on (prompts[i], seeds[i], cfg, steps, resolution): the engine relies on it
to batch freely across prompts and classes. Settings that change the loaded model
(path, dtype, device, scheduler, compile, channels_last) make a `BackendSettings`, the
key of the per-process model cache; settings that change one call make `SamplingParams`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
from PIL import Image

from synscale.errors import InvalidInput
from synscale.settings import flag_word

DTYPE_NAMES = ("float32", "float16", "bfloat16")


def torch_dtype(name: str):  # type: ignore[no-untyped-def]
    """torch dtype of a dtype name (validated earlier; unknown names raise InvalidInput)."""
    import torch

    table = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
    if name not in table:
        raise InvalidInput("generator.dtype", f"unknown dtype {name!r}; allowed: {', '.join(DTYPE_NAMES)}")
    return table[name]


def default_device() -> str:
    """synscale.settings.pick_device: SYNSCALE_DEVICE, else cuda when a GPU is visible."""
    import torch

    from synscale.settings import pick_device

    return pick_device(torch.cuda.is_available)


@dataclass(frozen=True)
class BackendSettings:
    """Everything that decides which model object is loaded (hashable: the cache key)."""

    backend: str
    model_path: str = ""
    device: str = "cpu"
    dtype: str = "float32"
    scheduler: str = ""
    options: tuple[tuple[str, str], ...] = ()
    eta: float | None = None  # GeneratorSpec.eta; None: the backend's own default

    def eta_or(self, default: float) -> float:
        """The sampler's eta: the job's when it sets one, else the backend's default."""
        if self.eta is None:
            return default
        if not math.isfinite(self.eta):
            raise InvalidInput("generator.eta", f"must be finite, got {self.eta}")
        return float(self.eta)

    def option(self, name: str, default: str = "") -> str:
        return dict(self.options).get(name, default)

    def flag(self, name: str, default: bool = False) -> bool:
        """A boolean option; a value that is not a boolean word is bad input."""
        raw = self.option(name, "").strip()
        value = flag_word(raw) if raw else default
        if value is None:
            raise InvalidInput(f"generator.options.{name}", f"expected true/false, got {raw!r}")
        return value

    def number(self, name: str, default: float) -> float:
        raw = self.option(name, "").strip()
        if not raw:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise InvalidInput(f"generator.options.{name}", f"expected a number, got {raw!r}") from None
        if not math.isfinite(value):
            raise InvalidInput(f"generator.options.{name}", f"must be finite, got {raw!r}")
        return value

    @property
    def label(self) -> str:
        """How Describe lists a loaded model."""
        where = self.model_path or "<default weights>"
        sched = f", scheduler={self.scheduler}" if self.scheduler else ""
        return f"{self.backend}:{where} ({self.dtype} on {self.device}{sched})"

    @classmethod
    def create(
        cls, backend: str, model_path: str = "", device: str = "cpu", dtype: str = "",
        scheduler: str = "", options: Mapping[str, str] | None = None, eta: float | None = None,
    ) -> BackendSettings:
        """Normalise: empty dtype means bfloat16 on GPU and float32 elsewhere."""
        if not dtype:
            dtype = "bfloat16" if device.startswith("cuda") and backend != "embedded" else "float32"
        return cls(backend, model_path, device, dtype, scheduler, tuple(sorted((options or {}).items())), eta)


@dataclass(frozen=True)
class SamplingParams:
    """Per-call settings shared by every image of one batch."""

    cfg: float
    steps: int
    negative_prompt: str = ""
    resolution: int = 0  # 0: the model's own default

    @property
    def guided(self) -> bool:
        """Guidance <= 1 means unguided sampling (no unconditional branch)."""
        return self.cfg > 1.0


@runtime_checkable
class Backend(Protocol):
    """A loaded text-to-image model."""

    name: str
    default_steps: int

    def generate(
        self, prompts: list[str], seeds: list[int], cfg: float, steps: int,
        negative_prompt: str = "", *, resolution: int = 0, output_type: str = "pil",
    ) -> list[Any]:
        """One image per prompt: PIL images, or float arrays HxWxC in [0, 1] for "np"."""
        ...

    def describe(self) -> dict[str, str]:
        """Human-readable facts for Describe (model, scheduler, attention, dtype)."""
        ...


def to_output(images: Sequence[Image.Image], output_type: str) -> list[Any]:
    """PIL images as the caller asked: unchanged for "pil", float arrays for "np"."""
    if output_type == "pil":
        return list(images)
    if output_type == "np":
        return [np.asarray(im, dtype=np.float32) / 255.0 for im in images]
    raise ValueError(f"output_type must be 'pil' or 'np', got {output_type!r}")


def arrays_to_pil(arrays: np.ndarray, mode: str | None = None) -> list[Image.Image]:
    """(N,H,W,C) floats in [0,1] -> PIL images, rounding like diffusers' numpy_to_pil."""
    data = (np.clip(arrays, 0.0, 1.0) * 255.0).round().astype(np.uint8)
    out = []
    for a in data:
        if a.ndim == 3 and a.shape[-1] == 1:
            a = a[..., 0]
        out.append(Image.fromarray(a, mode=mode) if mode else Image.fromarray(a))
    return out
