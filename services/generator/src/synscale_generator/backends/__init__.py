"""Backend registry keyed by GeneratorSpec.backend, and the per-process model cache.

Registered: embedded (the default, trained here), sd, sdxl, deepfloyd_if, amused, auto.
Each entry has a `check` (validate settings and weights without loading: used when a job
is validated, so bad jobs fail fast with a clear reason) and a `load`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from synscale.errors import InvalidInput

from .base import Backend, BackendSettings, SamplingParams, default_device


@dataclass(frozen=True)
class BackendEntry:
    check: Callable[[BackendSettings], None]
    load: Callable[[BackendSettings], Backend]
    description: str
    default_steps: int = 50


def _diffusers_entry(class_name: str, description: str, default_steps: int = 50) -> BackendEntry:
    def family():  # type: ignore[no-untyped-def]
        from . import diffusers_backends

        return getattr(diffusers_backends, class_name)

    return BackendEntry(
        check=lambda s: family().check(s),
        load=lambda s: family()(s),
        description=description,
        default_steps=default_steps,
    )


def _embedded_entry() -> BackendEntry:
    def check(s: BackendSettings) -> None:
        from .embedded import check_embedded

        check_embedded(s)

    def load(s: BackendSettings) -> Backend:
        from .embedded import EmbeddedAdapter

        return EmbeddedAdapter(s)

    return BackendEntry(check, load, "embedded 32x32 Fashion-MNIST T2I model trained by synscale", 25)


def _auto_entry() -> BackendEntry:
    def check(s: BackendSettings) -> None:
        from .diffusers_backends import DiffusersBackend

        DiffusersBackend.check(s)

    def load(s: BackendSettings) -> Backend:
        from .diffusers_backends import load_auto

        return load_auto(s)

    return BackendEntry(check, load, "any AutoPipelineForText2Image directory")


REGISTRY: dict[str, BackendEntry] = {
    "embedded": _embedded_entry(),
    "sd": _diffusers_entry("StableDiffusionBackend", "Stable Diffusion 1.x/2.x"),
    "sdxl": _diffusers_entry("StableDiffusionXLBackend", "Stable Diffusion XL"),
    "deepfloyd_if": _diffusers_entry("DeepFloydIFBackend", "DeepFloyd IF (Imagen-like cascade)", 100),
    "amused": _diffusers_entry("AmusedBackend", "aMUSEd (Muse-like masked tokens)", 12),
    "auto": _auto_entry(),
}


def backend_names() -> list[str]:
    return list(REGISTRY)


def register_backend(name: str, entry: BackendEntry) -> None:
    """Add a backend (plugins, tests). Names are what GeneratorSpec.backend says."""
    REGISTRY[name] = entry


def entry_for(name: str) -> BackendEntry:
    if name not in REGISTRY:
        raise InvalidInput("generator.backend", f"unknown backend {name!r}; known: {', '.join(REGISTRY)}")
    return REGISTRY[name]


class ModelCache:
    """Each distinct BackendSettings is loaded once per process and then shared."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._models: dict[BackendSettings, Backend] = {}

    def get(self, settings: BackendSettings) -> Backend:
        with self._lock:
            model = self._models.get(settings)
            if model is None:
                model = entry_for(settings.backend).load(settings)
                self._models[settings] = model
            return model

    def put(self, settings: BackendSettings, model: Backend) -> None:
        """Install an already-built model (benchmarks, tests)."""
        with self._lock:
            self._models[settings] = model

    def loaded(self) -> list[str]:
        with self._lock:
            return [s.label for s in self._models]


__all__ = [
    "REGISTRY", "Backend", "BackendEntry", "BackendSettings", "ModelCache", "SamplingParams",
    "backend_names", "default_device", "entry_for", "register_backend",
]
