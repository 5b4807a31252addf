"""Adapter from the embedded T2I model (synscale_generator.embedded) to the engine's protocol.

The embedded model is the default generator: a small diffusers UNet trained here on
Fashion-MNIST (no pretrained T2I weights exist offline). Its package owns training,
weights and sampling; this adapter only checks settings, adds the engine's keyword
arguments and converts outputs.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from synscale.errors import InvalidInput, PreconditionFailed

from .base import BackendSettings, SamplingParams, to_output, torch_dtype

IMAGE_SIZE = 32
EMBEDDED_SCHEDULERS = ("", "ddim", "dpm")


def _embedded_class() -> Any:
    try:
        from synscale_generator.embedded.backend import EmbeddedBackend
    except ImportError as exc:
        raise PreconditionFailed(
            "the embedded T2I backend (synscale_generator.embedded.backend) is not installed in "
            f"this build: {exc}"
        ) from exc
    return EmbeddedBackend


def check_embedded(settings: BackendSettings) -> None:
    """Settings and weights checks that need no model load."""
    if settings.scheduler not in EMBEDDED_SCHEDULERS:
        raise InvalidInput("generator.scheduler", f"unknown scheduler {settings.scheduler!r} for the "
                           f"embedded model; allowed: {', '.join(s for s in EMBEDDED_SCHEDULERS if s)}")
    if settings.model_path and not Path(settings.model_path).expanduser().exists():
        raise PreconditionFailed(f"generator.model_path: embedded weights {settings.model_path} do not exist")
    settings.flag("compile")
    eta = settings.eta_or(1.0)
    if not 0 <= eta <= 1:
        raise InvalidInput("generator.eta", f"must be within [0, 1], got {eta}")
    _embedded_class()
    from synscale_generator.embedded.weights import DEFAULT_WEIGHTS

    weights = Path(settings.model_path).expanduser() if settings.model_path else DEFAULT_WEIGHTS
    if weights.is_dir():
        weights = weights / DEFAULT_WEIGHTS.name
    if not weights.is_file():
        raise PreconditionFailed(f"generator.model_path: no embedded T2I weights at {weights}; train them "
                                 "with `synscale embedded train-generator`")


class EmbeddedAdapter:
    """The embedded model behind the engine's Backend protocol (32x32 greyscale)."""

    name = "embedded"
    default_steps = 25
    output_mode = "L"

    def __init__(self, settings: BackendSettings, inner: Any | None = None) -> None:
        self.settings = settings
        if inner is None:
            check_embedded(settings)
            inner = _embedded_class()(
                weights=settings.model_path or None, device=settings.device,
                scheduler=settings.scheduler or "ddim", eta=settings.eta_or(1.0),
            )
        self.inner = inner
        if settings.flag("compile") and hasattr(inner, "unet"):
            import torch

            inner.unet = torch.compile(inner.unet, mode=settings.option("compile_mode") or None)

    def generate(
        self, prompts: list[str], seeds: list[int], cfg: float, steps: int,
        negative_prompt: str = "", *, resolution: int = 0, output_type: str = "pil",
    ) -> list[Any]:
        if resolution not in (0, IMAGE_SIZE):
            raise InvalidInput("generator.resolution", f"the embedded model makes {IMAGE_SIZE}x{IMAGE_SIZE} "
                               f"images; got {resolution}")
        self._encode_alone([*prompts, negative_prompt])
        with self._precision():
            images = self.inner.generate(list(prompts), [int(s) for s in seeds], float(cfg), int(steps),
                                         negative_prompt=negative_prompt)
        return to_output(images, output_type)

    def _precision(self) -> contextlib.AbstractContextManager[Any]:
        """bf16/fp16 autocast when the generator asks for it (weights stay fp32).

        On a CPU with AMX (or on a GPU) the UNet's convolutions and matmuls run about
        1.7x faster in bf16 at large batch; the sampler's arithmetic stays fp32.
        """
        if self.settings.dtype == "float32":
            return contextlib.nullcontext()
        import torch

        device_type = torch.device(self.settings.device).type
        return torch.autocast(device_type=device_type, dtype=torch_dtype(self.settings.dtype))

    def _encode_alone(self, prompts: list[str]) -> None:
        """Embed each new prompt on its own before a batch uses it.

        The text encoder caches one embedding per prompt, computed the first time the
        prompt is seen, in a batch padded to that batch's longest prompt; padding changes
        the embedding's last bits (measured: 1e-7 for MiniLM), so an image would depend on
        which prompts happened to be embedded with its own. Encoding every prompt alone
        makes its embedding, and so its image, independent of its batch.
        """
        encoder = getattr(self.inner, "encoder", None)
        if encoder is None:
            return
        for prompt in dict.fromkeys(prompts):
            encoder.encode([prompt])

    def default_resolution(self) -> int:
        return IMAGE_SIZE

    def bytes_per_image(self, params: SamplingParams) -> int:
        # 16x16x4 latents through a ~2M-parameter UNet: activations are a few MB per image
        return 4 * 1024 * 1024 * (2 if params.guided else 1)

    def describe(self) -> dict[str, str]:
        facts = {"backend": self.name, "model_path": self.settings.model_path or "<committed weights>",
                 "device": self.settings.device, "scheduler": self.settings.scheduler or "ddim",
                 "dtype": self.settings.dtype}
        inner = getattr(self.inner, "describe", None)
        if callable(inner):
            facts.update({str(k): str(v) for k, v in inner().items() if k != "dtype"})
        return facts
