"""An embedded-shaped model with random weights: same work per image, no training needed.

It has the embedded model's architecture (a diffusers UNet2DConditionModel on the 16x16x4
space-to-depth layout of 32x32 greyscale images, one 384-d cross-attention token, batched
classifier-free guidance, stochastic DDIM with one generator per image). Prompts embed
through a seeded hash instead of MiniLM so it needs no text model. The benchmark uses it
when trained embedded weights are absent, and tests use it (tiny) to exercise the engine
without depending on the trained model.
"""

from __future__ import annotations

import hashlib
from typing import Any

import torch
import torch.nn.functional as F

from .base import BackendSettings, SamplingParams, arrays_to_pil

TEXT_DIM = 384
FULL_CHANNELS = (32, 64, 64)
TINY_CHANNELS = (8, 16, 16)


def prompt_vector(prompt: str) -> torch.Tensor:
    """A unit 384-d vector that depends only on the prompt ("" is the zero null token)."""
    if not prompt.strip():
        return torch.zeros(TEXT_DIM)
    seed = int.from_bytes(hashlib.sha256(prompt.encode()).digest()[:8], "big")
    v = torch.randn(TEXT_DIM, generator=torch.Generator().manual_seed(seed))
    return v / v.norm()


class EmbeddedShapedBackend:
    """Random-weight stand-in for the embedded model (see module docstring)."""

    name = "embedded-random"
    default_steps = 25
    output_mode = "L"

    def __init__(
        self, settings: BackendSettings | None = None, *, channels: tuple[int, ...] = FULL_CHANNELS,
        seed: int = 0, eta: float = 1.0,
    ) -> None:
        from diffusers import DDIMScheduler, UNet2DConditionModel

        self.settings = settings or BackendSettings("embedded-random")
        self.device = torch.device(self.settings.device)
        self.eta = self.settings.eta_or(eta)
        width = channels if settings is None else tuple(
            int(c) for c in self.settings.option("channels", ",".join(map(str, channels))).split(",")
        )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            unet: Any = UNet2DConditionModel(
                sample_size=16, in_channels=4, out_channels=4, block_out_channels=width,
                layers_per_block=1, attention_head_dim=8, cross_attention_dim=TEXT_DIM,
                norm_num_groups=min(8, width[0]),
                down_block_types=("DownBlock2D",) + ("CrossAttnDownBlock2D",) * (len(width) - 1),
                up_block_types=("CrossAttnUpBlock2D",) * (len(width) - 1) + ("UpBlock2D",),
            )
        self.unet = unet.eval().to(self.device)
        self.scheduler: Any = DDIMScheduler(
            num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", clip_sample=True,
            set_alpha_to_one=False, timestep_spacing="trailing",
        )

    @torch.inference_mode()
    def generate(
        self, prompts: list[str], seeds: list[int], cfg: float, steps: int,
        negative_prompt: str = "", *, resolution: int = 0, output_type: str = "pil",
    ) -> list[Any]:
        gens = [torch.Generator().manual_seed(int(s)) for s in seeds]
        x = torch.stack([torch.randn((4, 16, 16), generator=g) for g in gens]).to(self.device)
        cond = torch.stack([prompt_vector(p) for p in prompts]).unsqueeze(1).to(self.device)
        guided = cfg > 1.0
        null = prompt_vector(negative_prompt).expand_as(cond[:, 0]).unsqueeze(1).to(self.device)
        self.scheduler.set_timesteps(steps)
        for t in self.scheduler.timesteps:
            inp, ctx = (torch.cat([x, x]), torch.cat([null, cond])) if guided else (x, cond)
            eps = self.unet(inp, t, encoder_hidden_states=ctx).sample
            if guided:
                uncond, conditional = eps.chunk(2)
                eps = uncond + cfg * (conditional - uncond)
            x = self.scheduler.step(eps, t, x, eta=self.eta, generator=gens).prev_sample
        pixels = F.pixel_shuffle(x, 2).clamp(-1, 1).add(1).div(2)  # (N,1,32,32) in [0,1]
        arrays = pixels.permute(0, 2, 3, 1).float().cpu().numpy()
        return list(arrays) if output_type == "np" else arrays_to_pil(arrays, self.output_mode)

    def default_resolution(self) -> int:
        return 32

    def bytes_per_image(self, params: SamplingParams) -> int:
        return 4 * 1024 * 1024 * (2 if params.guided else 1)

    def describe(self) -> dict[str, str]:
        return {"backend": self.name, "device": str(self.device), "weights": "random",
                "parameters": str(sum(p.numel() for p in self.unet.parameters()))}


def tiny_standin(settings: BackendSettings | None = None) -> EmbeddedShapedBackend:
    """The stand-in at test size (a few thousand parameters)."""
    return EmbeddedShapedBackend(settings, channels=TINY_CHANNELS)


def register_standin(name: str = "standin", tiny: bool = True) -> None:
    """Register the stand-in under `name` in the backend registry (tests, benchmarks, demos)."""
    from . import BackendEntry, register_backend

    def load(settings: BackendSettings) -> EmbeddedShapedBackend:
        return tiny_standin(settings) if tiny else EmbeddedShapedBackend(settings)

    register_backend(name, BackendEntry(check=lambda _s: None, load=load,
                                        description="embedded-shaped UNet with random weights",
                                        default_steps=2 if tiny else 25))
