"""Real text-to-image families through diffusers, each loaded from a local directory.

Families: Stable Diffusion 1.x/2.x (`sd`), SDXL (`sdxl`), DeepFloyd IF, the open
Imagen-like pixel cascade (`deepfloyd_if`, stage I, optionally stage II), aMUSEd, the
open Muse-like masked-token model (`amused`), and any `AutoPipelineForText2Image`
directory (`auto`). What makes them usable by the engine:

- one `torch.Generator` per image (CPU generators: the starting noise of an image is the
  same on any device), so image i depends only on its own prompt and seed;
- the pipeline is asked for float arrays and the PIL conversion happens here, so a test
  can compare images before 8-bit rounding hides differences;
- a loaded pipeline is shared per (family, path, dtype, device, compile, channels_last);
  another scheduler is a `from_pipe` view over the same modules, not a second load;
- safety checkers and watermarkers are not loaded (research generation, and they alter
  or blank images the study must see as the model made them).
"""

from __future__ import annotations

import inspect
import logging
import threading
from pathlib import Path
from typing import Any, ClassVar

import torch

from synscale.errors import InvalidInput

from .base import BackendSettings, SamplingParams, arrays_to_pil, torch_dtype
from .schedulers import build_scheduler, check_scheduler_name
from .weights import SKIPPED_COMPONENTS, check_pipeline_class, read_model_index

log = logging.getLogger(__name__)

_LOCK = threading.Lock()
_PIPELINES: dict[tuple[str, ...], Any] = {}


def loaded_pipelines() -> list[str]:
    """Keys of the pipelines this process holds (for Describe)."""
    with _LOCK:
        return [" ".join(k) for k in _PIPELINES]


def clear_pipeline_cache() -> None:
    """Drop every loaded pipeline (tests; a long-lived process never needs it)."""
    with _LOCK:
        _PIPELINES.clear()


def denoiser_of(pipe: Any) -> Any:
    return getattr(pipe, "unet", None) or getattr(pipe, "transformer", None)


def optimize(pipe: Any, settings: BackendSettings) -> None:
    """channels_last and torch.compile on the denoiser (and channels_last on the VAE)."""
    if settings.flag("channels_last"):
        for name in ("unet", "transformer", "vae", "vqvae"):
            module = getattr(pipe, name, None)
            if isinstance(module, torch.nn.Module):
                module.to(memory_format=torch.channels_last)
    if settings.flag("compile"):
        for name in ("unet", "transformer"):
            module = getattr(pipe, name, None)
            if isinstance(module, torch.nn.Module):
                setattr(pipe, name, torch.compile(module, mode=settings.option("compile_mode") or None))


class DiffusersBackend:
    """Generic text-to-image pipeline; families override what differs."""

    name = "auto"
    loader = "AutoPipelineForText2Image"
    accepted_classes: ClassVar[tuple[str, ...]] = ()  # empty: any pipeline class
    allowed_schedulers: ClassVar[tuple[str, ...] | None] = None
    default_steps = 50
    output_mode: str | None = None  # PIL mode; None keeps RGB

    def __init__(self, settings: BackendSettings, pipeline: Any | None = None) -> None:
        self.settings = settings
        if pipeline is None:
            type(self).check(settings)
            pipeline = self._load_shared(settings)
        self.pipe = self._with_scheduler(pipeline)
        self.pipe.set_progress_bar_config(disable=True)
        self._call_params = set(inspect.signature(self.pipe.__call__).parameters)

    # -- loading -----------------------------------------------------------------------
    @classmethod
    def check(cls, settings: BackendSettings) -> None:
        """Validate settings and the weights directory without loading anything."""
        check_scheduler_name(settings.scheduler, cls.allowed_schedulers)
        index = read_model_index(settings.model_path, settings.backend)
        check_pipeline_class(index, cls.accepted_classes, settings.backend, settings.model_path)
        settings.flag("compile")
        settings.flag("channels_last")
        settings.eta_or(0.0)

    def _load_shared(self, settings: BackendSettings) -> Any:
        key = (
            self.loader, str(Path(settings.model_path).resolve()), settings.dtype, settings.device,
            f"compile={settings.flag('compile')}", f"channels_last={settings.flag('channels_last')}",
            f"variant={settings.option('variant')}",
        )
        with _LOCK:
            if key not in _PIPELINES:
                _PIPELINES[key] = self._load(settings)
            return _PIPELINES[key]

    def _load(self, settings: BackendSettings) -> Any:
        import diffusers
        from diffusers.utils import logging as diffusers_logging

        diffusers_logging.disable_progress_bar()  # a service log is no terminal

        index = read_model_index(settings.model_path, settings.backend)
        kwargs: dict[str, Any] = {"dtype": torch_dtype(settings.dtype)}
        for component in SKIPPED_COMPONENTS:
            if component in index:
                kwargs[component] = None
        if settings.option("variant"):
            kwargs["variant"] = settings.option("variant")
        log.info("loading %s from %s (%s on %s)", self.loader, settings.model_path,
                 settings.dtype, settings.device)
        pipe = getattr(diffusers, self.loader).from_pretrained(settings.model_path, **kwargs)
        pipe.to(settings.device)
        optimize(pipe, settings)
        return pipe

    def _with_scheduler(self, base: Any) -> Any:
        scheduler = build_scheduler(self.settings.scheduler, base.scheduler)
        if scheduler is base.scheduler:
            return base
        return type(base).from_pipe(base, scheduler=scheduler, dtype=torch_dtype(self.settings.dtype))

    # -- generation --------------------------------------------------------------------
    def generators(self, seeds: list[int]) -> list[torch.Generator]:
        return [torch.Generator("cpu").manual_seed(int(s)) for s in seeds]

    def call_kwargs(
        self, prompts: list[str], generators: list[torch.Generator], params: SamplingParams,
    ) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "prompt": prompts, "num_inference_steps": params.steps, "guidance_scale": params.cfg,
            "generator": generators, "output_type": "np",
        }
        if params.resolution:
            kwargs["height"] = kwargs["width"] = params.resolution
        if params.negative_prompt and params.guided:
            kwargs["negative_prompt"] = [params.negative_prompt] * len(prompts)
        if self.settings.eta is not None:
            kwargs["eta"] = self.settings.eta_or(0.0)
        return {k: v for k, v in kwargs.items() if k in self._call_params}

    def generate(
        self, prompts: list[str], seeds: list[int], cfg: float, steps: int,
        negative_prompt: str = "", *, resolution: int = 0, output_type: str = "pil",
    ) -> list[Any]:
        if len(prompts) != len(seeds):
            raise ValueError(f"{len(prompts)} prompts but {len(seeds)} seeds")
        params = SamplingParams(cfg, steps, negative_prompt, resolution)
        arrays = self.run(list(prompts), self.generators(list(seeds)), params)
        if output_type == "np":
            return list(arrays)
        if output_type != "pil":
            raise ValueError(f"output_type must be 'pil' or 'np', got {output_type!r}")
        return arrays_to_pil(arrays, self.output_mode)

    def run(self, prompts: list[str], generators: list[torch.Generator], params: SamplingParams) -> Any:
        """(N,H,W,C) float array in [0,1] from the pipeline."""
        return self.pipe(**self.call_kwargs(prompts, generators, params)).images

    # -- facts -------------------------------------------------------------------------
    def default_resolution(self) -> int:
        denoiser = denoiser_of(self.pipe)
        size = getattr(getattr(denoiser, "config", None), "sample_size", None) or 64
        size = size[0] if isinstance(size, list | tuple) else size
        return int(size) * int(getattr(self.pipe, "vae_scale_factor", 1) or 1)

    def bytes_per_image(self, params: SamplingParams) -> int:
        """Rough peak memory of one image (heuristic; OOM halving is the safety net).

        Denoiser activations scale with latent pixels x base channels (twice under CFG);
        the VAE decoder's with output pixels x its widest channels.
        """
        res = params.resolution or self.default_resolution()
        elem = torch.finfo(torch_dtype(self.settings.dtype)).bits // 8
        scale = int(getattr(self.pipe, "vae_scale_factor", 8) or 8)
        denoiser = denoiser_of(self.pipe)
        channels = getattr(getattr(denoiser, "config", None), "block_out_channels", None) or [320]
        base = channels[0] if isinstance(channels, list | tuple) else int(channels)
        denoise = (res // scale) ** 2 * base * elem * 40 * (2 if params.guided else 1)
        decode = res * res * 128 * elem * 10
        return int(denoise + decode)

    def describe(self) -> dict[str, str]:
        denoiser = denoiser_of(self.pipe)
        processors = getattr(denoiser, "attn_processors", {}) or {}
        attention = sorted({type(p).__name__ for p in processors.values()})
        return {
            "backend": self.name,
            "model_path": self.settings.model_path,
            "pipeline": type(self.pipe).__name__,
            "scheduler": type(self.pipe.scheduler).__name__,
            "dtype": self.settings.dtype,
            "device": self.settings.device,
            "attention": ",".join(attention) or "n/a",
            "compiled": str(self.settings.flag("compile")).lower(),
            "channels_last": str(self.settings.flag("channels_last")).lower(),
        }


class StableDiffusionBackend(DiffusersBackend):
    """Stable Diffusion 1.x / 2.x (latent diffusion, CLIP text encoder)."""

    name = "sd"
    loader = "StableDiffusionPipeline"
    accepted_classes = ("StableDiffusionPipeline",)


class StableDiffusionXLBackend(DiffusersBackend):
    """SDXL base (two text encoders, size/crop micro-conditioning)."""

    name = "sdxl"
    loader = "StableDiffusionXLPipeline"
    accepted_classes = ("StableDiffusionXLPipeline",)


class DeepFloydIFBackend(DiffusersBackend):
    """DeepFloyd IF: T5-conditioned pixel diffusion, the open Imagen-like cascade.

    Stage I makes the image at `resolution` (64 for the real model); when
    options.stage2_path names an IFSuperResolutionPipeline directory, stage II upsamples
    it to options.stage2_resolution (default: its own, 256 for the real model), sharing
    stage I's prompt embeddings and each image's generator, so the pair stays
    reproducible per image.
    """

    name = "deepfloyd_if"
    loader = "IFPipeline"
    accepted_classes = ("IFPipeline",)
    default_steps = 100

    def __init__(
        self, settings: BackendSettings, pipeline: Any | None = None, stage2: Any | None = None,
    ) -> None:
        super().__init__(settings, pipeline)
        self.stage2 = stage2
        if self.stage2 is None and settings.option("stage2_path"):
            self.stage2 = self._load_stage2(settings)
        if self.stage2 is not None:
            self.stage2.set_progress_bar_config(disable=True)

    @classmethod
    def check(cls, settings: BackendSettings) -> None:
        super().check(settings)
        if settings.option("stage2_path"):
            index = read_model_index(settings.option("stage2_path"), settings.backend,
                                     field="generator.options.stage2_path")
            check_pipeline_class(index, ("IFSuperResolutionPipeline",), settings.backend,
                                 settings.option("stage2_path"))
        for name, default in (("stage2_steps", 0), ("stage2_noise_level", 250), ("stage2_resolution", 0)):
            if settings.number(name, default) < 0:
                raise InvalidInput(f"generator.options.{name}", "must be >= 0")

    def _load_stage2(self, settings: BackendSettings) -> Any:
        from diffusers import IFSuperResolutionPipeline

        key = ("IFSuperResolutionPipeline", str(Path(settings.option("stage2_path")).resolve()),
               settings.dtype, settings.device)
        with _LOCK:
            if key not in _PIPELINES:
                pipe = IFSuperResolutionPipeline.from_pretrained(
                    settings.option("stage2_path"), dtype=torch_dtype(settings.dtype),
                    text_encoder=None, tokenizer=None, safety_checker=None, feature_extractor=None,
                    watermarker=None,
                )
                pipe.to(settings.device)
                optimize(pipe, settings)
                _PIPELINES[key] = pipe
            return _PIPELINES[key]

    def call_kwargs(self, prompts, generators, params):  # type: ignore[no-untyped-def]
        kwargs = super().call_kwargs(prompts, generators, params)
        kwargs["clean_caption"] = False  # needs bs4 + ftfy, and changes the user's prompt
        return kwargs

    def run(self, prompts: list[str], generators: list[torch.Generator], params: SamplingParams) -> Any:
        if self.stage2 is None:
            return super().run(prompts, generators, params)
        negative = [params.negative_prompt] * len(prompts) if params.negative_prompt else None
        embeds, negative_embeds = self.pipe.encode_prompt(
            prompts, do_classifier_free_guidance=params.guided, device=self.pipe.device,
            negative_prompt=negative, clean_caption=False,
        )
        stage1 = self.pipe(
            prompt_embeds=embeds, negative_prompt_embeds=negative_embeds, generator=generators,
            num_inference_steps=params.steps, guidance_scale=params.cfg, output_type="pt",
            **({"height": params.resolution, "width": params.resolution} if params.resolution else {}),
        ).images
        steps2 = int(self.settings.number("stage2_steps", 0)) or params.steps
        size2 = int(self.settings.number("stage2_resolution", 0))
        return self.stage2(
            **({"height": size2, "width": size2} if size2 else {}),
            image=stage1, prompt_embeds=embeds, negative_prompt_embeds=negative_embeds,
            generator=generators, num_inference_steps=steps2, guidance_scale=params.cfg,
            noise_level=int(self.settings.number("stage2_noise_level", 250)), output_type="np",
            clean_caption=False,
        ).images

    def default_resolution(self) -> int:
        return int(self.pipe.unet.config.sample_size)

    def describe(self) -> dict[str, str]:
        facts = super().describe()
        facts["stage2"] = self.settings.option("stage2_path") or "none"
        return facts


def _per_sample_amused_scheduler():  # type: ignore[no-untyped-def]
    """AmusedScheduler whose step takes one generator per sample.

    The stock scheduler draws its token samples and Gumbel noise for the whole batch
    from one generator, which ties every image to its batch companions; stepping each
    sample with its own generator (the step is elementwise per sample) restores
    per-image reproducibility.
    """
    from diffusers import AmusedScheduler
    from diffusers.schedulers.scheduling_amused import AmusedSchedulerOutput

    class PerSampleAmusedScheduler(AmusedScheduler):
        def step(self, model_output, timestep, sample, starting_mask_ratio=1.0, generator=None,  # type: ignore[no-untyped-def,override]
                 return_dict=True):
            if not isinstance(generator, list | tuple):
                return super().step(  # type: ignore[misc]
                    model_output, timestep, sample, starting_mask_ratio, generator, return_dict)
            parts = [
                super(PerSampleAmusedScheduler, self).step(  # type: ignore[misc]
                    model_output[i:i + 1], timestep, sample[i:i + 1], starting_mask_ratio, g, True,
                )
                for i, g in enumerate(generator)
            ]
            prev = torch.cat([p.prev_sample for p in parts])
            pred = torch.cat([p.pred_original_sample for p in parts])
            return AmusedSchedulerOutput(prev, pred) if return_dict else (prev, pred)  # type: ignore[arg-type]

    return PerSampleAmusedScheduler


class AmusedBackend(DiffusersBackend):
    """aMUSEd: masked-token parallel decoding over VQ-GAN codes, the open Muse-like model."""

    name = "amused"
    loader = "AmusedPipeline"
    accepted_classes = ("AmusedPipeline",)
    allowed_schedulers = ("", "default", "amused")
    default_steps = 12

    def _with_scheduler(self, base: Any) -> Any:
        scheduler = _per_sample_amused_scheduler().from_config(base.scheduler.config)
        return type(base).from_pipe(base, scheduler=scheduler, dtype=torch_dtype(self.settings.dtype))

    def generators(self, seeds: list[int]) -> list[torch.Generator]:
        # token sampling runs where the logits are; a CPU generator would copy them every step
        return [torch.Generator(self.settings.device).manual_seed(int(s)) for s in seeds]

    def default_resolution(self) -> int:
        return int(self.pipe.transformer.config.sample_size) * int(self.pipe.vae_scale_factor)


FAMILY_BY_CLASS: dict[str, type[DiffusersBackend]] = {
    "StableDiffusionPipeline": StableDiffusionBackend,
    "StableDiffusionXLPipeline": StableDiffusionXLBackend,
    "IFPipeline": DeepFloydIFBackend,
    "AmusedPipeline": AmusedBackend,
}


def load_auto(settings: BackendSettings) -> DiffusersBackend:
    """`auto`: the family class when the directory holds a known family, else the generic one."""
    DiffusersBackend.check(settings)
    index = read_model_index(settings.model_path, settings.backend)
    family = FAMILY_BY_CLASS.get(str(index["_class_name"]))
    if family is None:
        return DiffusersBackend(settings)
    if family.allowed_schedulers is not None and settings.scheduler not in family.allowed_schedulers:
        raise InvalidInput("generator.scheduler", f"{index['_class_name']} supports only "
                           f"{', '.join(repr(s) for s in family.allowed_schedulers)}")
    return family(settings)
