"""Sampling API of the embedded T2I model, as the generation engine calls it.

Each image has its own seeded `torch.Generator` for its initial noise and for the fresh
noise that stochastic DDIM (eta > 0) adds at every step, so image i is a function of
(prompts[i], seeds[i], cfg, steps) alone. Classifier-free guidance runs the conditional
and unconditional branches in one UNet batch.
Bit-exactness across batch compositions also needs the UNet's kernels to give each row
the same result whatever the batch. On CPU they do not for tiny batches: oneDNN/MKL pick
other convolution and GEMM paths below ~16 rows, which changes the last float bit (seen
with 1–12 rows on a 2-core Xeon; 16 rows and more, and any row offset, agreed exactly).
So every UNet call is padded with zero rows to a multiple of `ROW_MULTIPLE` (32) rows;
tests/unit/generator/test_embedded_backend.py checks the resulting latents bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from synscale.errors import InvalidInput

from .model import (
    LATENT_CHANNELS,
    LATENT_SIZE,
    SCHEDULERS,
    ScheduleConfig,
    count_parameters,
    sampling_scheduler,
    to_pixels,
)
from .text import TextEncoder
from .weights import DEFAULT_WEIGHTS, LoadedModel, load_weights, sha256_of

MAX_STEPS = 1000
ROW_MULTIPLE = 32


class EmbeddedBackend:
    """The embedded generator: Fashion-MNIST-style 32x32 greyscale images from prompts."""

    name = "embedded"

    def __init__(
        self,
        weights: str | Path | None = None,
        device: str = "cpu",
        scheduler: str = "ddim",
        eta: float = 1.0,
        *,
        clip_sample: bool = True,
        max_batch: int = 256,
        model: LoadedModel | None = None,
        encoder: TextEncoder | None = None,
    ) -> None:
        """Load the weights (default: the committed ones) and prepare the sampler.

        `model` lets tests pass a randomly initialised UNet instead of a weights file;
        `max_batch` caps the images per UNet call (twice that many rows with CFG).
        """
        if scheduler not in SCHEDULERS:
            raise InvalidInput("scheduler", f"unknown scheduler {scheduler!r}; expected one of {SCHEDULERS}")
        if not (math.isfinite(eta) and 0.0 <= eta <= 1.0):
            raise InvalidInput("eta", f"must be within [0, 1], got {eta}")
        if max_batch < 1:
            raise InvalidInput("max_batch", f"must be at least 1, got {max_batch}")
        self.device = torch.device(device)
        self.weights_path: Path | None = None
        if model is None:
            self.weights_path = Path(weights) if weights is not None else DEFAULT_WEIGHTS
            model = load_weights(self.weights_path, device=str(self.device))
            if self.weights_path.is_dir():
                self.weights_path = self.weights_path / DEFAULT_WEIGHTS.name
        self.model = model
        self.unet = model.unet.to(self.device).eval().requires_grad_(False)
        self.schedule: ScheduleConfig = model.schedule
        self.scheduler_name = scheduler
        self.eta = float(eta)
        self.clip_sample = clip_sample
        self.max_batch = max_batch
        self.encoder = encoder or TextEncoder(device=str(self.device))
        self._scheduler_template = sampling_scheduler(self.schedule, scheduler, clip_sample)

    # -- public API ---------------------------------------------------------------
    def generate(
        self,
        prompts: list[str],
        seeds: list[int],
        cfg: float,
        steps: int,
        negative_prompt: str = "",
    ) -> list[Image.Image]:
        """One image per prompt; image i depends only on (prompts[i], seeds[i], cfg, steps).

        cfg <= 1 is unguided: the conditional branch alone, no unconditional pass.
        """
        self._validate(prompts, seeds, cfg, steps)
        images: list[Image.Image] = []
        for start in range(0, len(prompts), self.max_batch):
            end = start + self.max_batch
            images += self._generate_batch(prompts[start:end], seeds[start:end], cfg, steps, negative_prompt)
        return images

    def describe(self) -> dict[str, str]:
        info = self.model.info
        out = {
            "backend": self.name,
            "model": "UNet2DConditionModel (space-to-depth 16x16x4) + all-MiniLM-L6-v2 text",
            "resolution": "32",
            "mode": "L",
            "device": str(self.device),
            "scheduler": self.scheduler_name,
            "eta": f"{self.eta:g}",
            "clip_sample": str(self.clip_sample).lower(),
            "parameters": str(count_parameters(self.unet)),
            "max_batch": str(self.max_batch),
            "beta_schedule": self.schedule.beta_schedule,
        }
        if self.weights_path is not None:
            out["weights"] = str(self.weights_path)
            out["sha256"] = sha256_of(self.weights_path)
        for key in ("seed", "steps", "images_seen", "loss_ema"):
            if key in info:
                out[f"trained_{key}"] = str(info[key])
        return out

    # -- internals ----------------------------------------------------------------
    @staticmethod
    def _validate(prompts: Sequence[str], seeds: Sequence[int], cfg: float, steps: int) -> None:
        if len(prompts) != len(seeds):
            raise InvalidInput(
                "seeds", f"need one seed per prompt ({len(prompts)} prompts, {len(seeds)} seeds)"
            )
        if not all(isinstance(p, str) for p in prompts):
            raise InvalidInput("prompts", "every prompt must be a string")
        if not all(isinstance(s, int) and 0 <= s < 2**63 for s in seeds):
            raise InvalidInput("seeds", "every seed must be an integer in [0, 2**63)")
        if not (isinstance(cfg, int | float) and math.isfinite(cfg) and cfg >= 0):
            raise InvalidInput("cfg", f"must be a finite number >= 0, got {cfg!r}")
        if not (isinstance(steps, int) and 1 <= steps <= MAX_STEPS):
            raise InvalidInput("steps", f"must be an integer in [1, {MAX_STEPS}], got {steps!r}")

    def _noise(self, generators: list[torch.Generator]) -> torch.Tensor:
        shape = (LATENT_CHANNELS, LATENT_SIZE, LATENT_SIZE)
        return torch.stack([torch.randn(shape, generator=g) for g in generators]).to(self.device)

    def _generate_batch(
        self, prompts: list[str], seeds: list[int], cfg: float, steps: int, negative_prompt: str
    ) -> list[Image.Image]:
        if not prompts:
            return []
        return _to_images(self.sample_pixels(prompts, seeds, cfg, steps, negative_prompt))

    @torch.inference_mode()
    def sample_pixels(
        self, prompts: list[str], seeds: list[int], cfg: float, steps: int, negative_prompt: str = ""
    ) -> torch.Tensor:
        """The float samples (B,1,32,32) in about [-1, 1], before 8-bit quantisation."""
        guided = cfg > 1.0
        cond = self.encoder.tokens(prompts).to(self.device)
        if guided:
            uncond = self.encoder.tokens([negative_prompt]).to(self.device).expand_as(cond)
            context = torch.cat([uncond, cond])
        else:
            context = cond
        # CPU generators: identical noise whatever the device, and cheap to make per image.
        generators = [torch.Generator().manual_seed(int(s)) for s in seeds]
        # Schedulers keep per-run state (DPM-Solver's history), so each batch gets its own.
        scheduler = type(self._scheduler_template).from_config(self._scheduler_template.config)
        scheduler.set_timesteps(steps, device=self.device)
        latents = self._noise(generators) * scheduler.init_noise_sigma
        for t in scheduler.timesteps:
            model_in = torch.cat([latents, latents]) if guided else latents
            model_in = scheduler.scale_model_input(model_in, t)
            pred = self._unet(model_in, t, context)
            if guided:
                pred_uncond, pred_cond = pred.chunk(2)
                pred = pred_uncond + cfg * (pred_cond - pred_uncond)
            latents = self._step(scheduler, pred, t, latents, generators)
        return to_pixels(latents)

    def _unet(self, sample: torch.Tensor, t: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """One UNet call, padded to a multiple of ROW_MULTIPLE rows (see module doc)."""
        rows = sample.shape[0]
        pad = -rows % ROW_MULTIPLE
        if pad:
            sample = torch.cat([sample, sample.new_zeros((pad, *sample.shape[1:]))])
            context = torch.cat([context, context.new_zeros((pad, *context.shape[1:]))])
        return self.unet(sample, t, encoder_hidden_states=context).sample[:rows]

    def _step(
        self,
        scheduler: Any,
        pred: torch.Tensor,
        t: torch.Tensor,
        latents: torch.Tensor,
        generators: list[torch.Generator],
    ) -> torch.Tensor:
        if self.scheduler_name == "ddim":
            noise = self._noise(generators) if self.eta > 0 else None
            return scheduler.step(pred, t, latents, eta=self.eta, variance_noise=noise).prev_sample
        return scheduler.step(pred, t, latents).prev_sample


def _to_images(pixels: torch.Tensor) -> list[Image.Image]:
    """(B,1,32,32) in [-1,1] → 8-bit greyscale PIL images."""
    arr = ((pixels.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu().numpy()
    return [Image.fromarray(np.ascontiguousarray(a[0]), mode="L") for a in arr]
