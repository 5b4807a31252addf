"""Generation throughput: the synscale engine against a naive loop on the same model, same run.

Prints one JSON object.

CPU mode (default), the embedded model: the committed trained weights when present,
else the same architecture with random weights (the work per image is identical).
- engine: `Engine.run` over N (prompt, seed) requests — batched classifier-free guidance,
  fixed-size padded batches, inference_mode, PNG encoding in a thread pool; timed until
  every PNG is encoded. Run in float32 and, where the CPU has native bf16 (AVX512-BF16 /
  AMX), with bf16 autocast (generator dtype bfloat16); the headline is the faster one,
  and both are reported with their pixel differences from the float32 naive images.
- naive: a diffusers-style loop with library defaults, one call per image: `no_grad`,
  the prompt's [uncond, cond] pair as a batch of 2, the same DDIM scheduler and eta, the
  same per-image generator, then PIL + PNG inline.
Both start from the same noise, so `pixel_diff_vs_naive_float32` (8-bit levels) checks
that the two compute the same images. Prompt embeddings are computed once per prompt
before timing, for both (a study repeats each prompt many times; the encoder caches).
Target: engine >= 5x naive on a 2-core CPU.

    python bench/generate.py [--images 256] [--naive-images 24] [--steps 25] [--cfg 2] [--batch-size 128]

GPU mode (`--gpu-sd15`), only where CUDA exists: a Stable-Diffusion-1.5-shaped pipeline
(real UNet/VAE/CLIP-L configs, random weights) at 512x512, bf16, 50 steps with CFG.
Reports images/s of the engine (batched, bf16, SDPA) against the naive loop (one pipeline
call per image, library defaults: float32), and model-FLOP utilisation of the engine:
images/s x steps x 2 (CFG) x 0.80 TFLOP (one SD-1.5 UNet forward at 512^2) / the card's
bf16 dense peak. The UNet forward's FLOPs are also counted with torch's FlopCounterMode.

    python bench/generate.py --gpu-sd15 [--images 64] [--batch-size 16] [--naive-images 3] [--compile]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from synscale import ids
from synscale.datasets.fashion_mnist import CLASSES
from synscale.shards import encode_png
from synscale_generator.backends import BackendSettings, SamplingParams
from synscale_generator.engine import Engine, ImageRequest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
TEMPLATES = ("{}", "a photo of a {}", "a {} on a white background", "a picture of the {}")
SD15_TFLOP_PER_FORWARD = 0.80
BF16_PEAK_TFLOPS = {"H200": 989.4, "H100 SXM": 989.4, "H100 PCIe": 756.0, "H100 NVL": 835.0, "H100": 989.4,
                    "GH200": 989.4, "A100": 312.0, "L40S": 362.0, "L4": 121.0, "A10G": 70.0}


def requests(n: int, model: str) -> list[ImageRequest]:
    """n prompts cycling over classes and templates, seeded as a study would seed them."""
    out = []
    for i in range(n):
        class_id, name = CLASSES[i % len(CLASSES)]
        prompt = TEMPLATES[(i // len(CLASSES)) % len(TEMPLATES)].format(name)
        out.append(ImageRequest(prompt, ids.image_seed("bench", model, "bench", class_id, i)))
    return out


class Clock:
    """Wall time, and this process's CPU time (all threads): on a shared host the CPU time
    is less distorted by other processes' load than the wall time."""

    def __enter__(self) -> Clock:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


def timed_engine(engine: Engine, backend: Any, params: SamplingParams, reqs: list[ImageRequest],
                 batch_size: int) -> tuple[Clock, list[bytes]]:
    with Clock() as clock:
        futures = [f for b in engine.run(backend, params, reqs, batch_size=batch_size) for f in b.pngs]
        pngs = [f.result() for f in futures]
    return clock, pngs


def pixel_diff(a: list[bytes], b: list[bytes]) -> dict[str, float]:
    """Max and mean absolute difference in 8-bit levels between paired images."""
    diffs = [np.abs(np.asarray(Image.open(_io(x)), np.int16) - np.asarray(Image.open(_io(y)), np.int16))
             for x, y in zip(a, b, strict=False)]
    if not diffs:
        return {"max": -1, "mean": -1}
    mean = float(np.mean([d.mean() for d in diffs]))
    return {"max": int(max(d.max() for d in diffs)), "mean": round(mean, 3)}


def _io(data: bytes) -> Any:
    import io

    return io.BytesIO(data)


# -- CPU: the embedded model ------------------------------------------------------------
@dataclass
class EmbeddedParts:
    """What the naive loop needs from the model the engine runs."""

    label: str
    backend: Any
    unet: torch.nn.Module
    tokens: Callable[[str], torch.Tensor]  # (1, 1, 384)
    scheduler: Callable[[], Any]
    eta: float


def embedded_parts(weights_required: bool, weights_path: str = "") -> EmbeddedParts:
    """The trained embedded model if its weights exist, else its architecture, random."""
    from synscale_generator.backends.embedded import EmbeddedAdapter
    from synscale_generator.embedded.backend import EmbeddedBackend
    from synscale_generator.embedded.model import ModelConfig, ScheduleConfig, build_unet
    from synscale_generator.embedded.weights import DEFAULT_WEIGHTS, LoadedModel

    weights = Path(weights_path) if weights_path else DEFAULT_WEIGHTS
    if weights.is_file():
        inner, label = EmbeddedBackend(weights), f"embedded (trained weights {weights})"
    elif weights_required:
        raise SystemExit(f"no trained embedded weights at {weights}")
    else:
        torch.manual_seed(0)
        model = LoadedModel(build_unet(ModelConfig()), ModelConfig(), ScheduleConfig(), {})
        inner, label = EmbeddedBackend(model=model), "embedded architecture, random weights"
    template = inner._scheduler_template
    return EmbeddedParts(
        label=label, backend=EmbeddedAdapter(BackendSettings.create("embedded"), inner=inner),
        unet=inner.unet, tokens=lambda p: inner.encoder.tokens([p]),
        scheduler=lambda: type(template).from_config(template.config), eta=inner.eta,
    )


@torch.no_grad()
def naive_embedded(parts: EmbeddedParts, req: ImageRequest, cfg: float, steps: int) -> bytes:
    """One image, the way a straightforward diffusers pipeline call computes it."""
    g = torch.Generator().manual_seed(int(req.seed))
    sched = parts.scheduler()
    sched.set_timesteps(steps)
    cond = parts.tokens(req.prompt)
    context = torch.cat([parts.tokens(""), cond]) if cfg > 1 else cond
    x = torch.randn((1, 4, 16, 16), generator=g) * sched.init_noise_sigma
    for t in sched.timesteps:
        inp = sched.scale_model_input(torch.cat([x, x]) if cfg > 1 else x, t)
        eps = parts.unet(inp, t, encoder_hidden_states=context).sample
        if cfg > 1:
            uncond, conditional = eps.chunk(2)
            eps = uncond + cfg * (conditional - uncond)
        x = sched.step(eps, t, x, eta=parts.eta, generator=g).prev_sample
    pixels = torch.nn.functional.pixel_shuffle(x, 2).clamp(-1, 1)
    image = Image.fromarray(((pixels[0, 0] + 1) * 127.5).round().to(torch.uint8).numpy(), mode="L")
    return encode_png(image)


def cpu_bf16_supported() -> bool:
    """oneDNN runs bf16 convolutions/matmuls natively (AVX512-BF16 or AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def cpu_bench(args: argparse.Namespace) -> dict[str, Any]:
    parts = embedded_parts(args.require_weights, args.weights)
    params = SamplingParams(args.cfg, args.steps)
    reqs = requests(args.images, "embedded")
    for prompt in {"", *(r.prompt for r in reqs)}:  # embeddings are cached per process on both sides
        parts.tokens(prompt)
    dtypes = ["float32"] + (["bfloat16"] if args.engine_bf16 and cpu_bf16_supported() else [])
    if args.compile:  # the engine's model only; the naive loop keeps parts.unet as it is
        inner = parts.backend.inner
        inner.unet = torch.compile(inner.unet)
    engine_runs: dict[str, dict[str, Any]] = {}
    engine_pngs: dict[str, list[bytes]] = {}
    for dtype in dtypes:
        parts.backend.settings = BackendSettings.create("embedded", dtype=dtype)
        engine = Engine("cpu", default_batch_size=args.batch_size)
        timed_engine(engine, parts.backend, params, reqs[: min(8, len(reqs))], args.batch_size)  # warm-up
        clock, engine_pngs[dtype] = timed_engine(engine, parts.backend, params, reqs, args.batch_size)
        engine.close()
        engine_runs[dtype] = {
            "images": len(reqs), "seconds": round(clock.wall, 2),
            "images_per_s": round(len(reqs) / clock.wall, 2),
            "cpu_s_per_image": round(clock.cpu / len(reqs), 4), "batch_size": engine.last_batch_size,
        }
    naive_embedded(parts, reqs[0], args.cfg, args.steps)  # warm-up
    with Clock() as naive_clock:
        naive_pngs = [naive_embedded(parts, r, args.cfg, args.steps) for r in reqs[: args.naive_images]]
    naive = {"images": len(naive_pngs), "dtype": "float32", "seconds": round(naive_clock.wall, 2),
             "images_per_s": round(len(naive_pngs) / naive_clock.wall, 2),
             "cpu_s_per_image": round(naive_clock.cpu / len(naive_pngs), 4), "batch_size": 1}
    best = dtypes[-1]
    out: dict[str, Any] = {
        "bench": "generate", "mode": "cpu-embedded", "model": parts.label,
        "device": "cpu", "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(), "cpu_bf16": cpu_bf16_supported(),
        "steps": args.steps, "cfg": args.cfg, "scheduler": "ddim", "eta": parts.eta,
        "compile": bool(args.compile), "load_average_1m": round(os.getloadavg()[0], 2),
        "engine": {**engine_runs[best], "dtype": best},
        "naive": naive,
        "speedup": round(engine_runs[best]["images_per_s"] / naive["images_per_s"], 2),
        "speedup_cpu_time": round(naive["cpu_s_per_image"] / engine_runs[best]["cpu_s_per_image"], 2),
        "target_speedup": 5.0,
    }
    for dtype in dtypes:
        out[f"pixel_diff_vs_naive_{dtype}"] = pixel_diff(engine_pngs[dtype][: len(naive_pngs)], naive_pngs)
    if best != "float32":
        fp32 = engine_runs["float32"]
        out["engine_float32"] = fp32
        out["speedup_float32"] = round(fp32["images_per_s"] / naive["images_per_s"], 2)
        out["speedup_cpu_time_float32"] = round(naive["cpu_s_per_image"] / fp32["cpu_s_per_image"], 2)
    return out


# -- GPU: an SD-1.5-shaped pipeline ------------------------------------------------------
def sd15_pipeline(device: str, dtype: torch.dtype) -> Any:
    """Stable Diffusion 1.5's UNet, VAE and CLIP ViT-L/14 text encoder configs, random weights."""
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from synscale_generator.backends.tiny import tiny_clip_tokenizer

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=64, in_channels=4, out_channels=4, layers_per_block=2,
        block_out_channels=(320, 640, 1280, 1280), cross_attention_dim=768, attention_head_dim=8,
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
    )
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2, sample_size=512,
        block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
    )
    tokenizer = tiny_clip_tokenizer()
    text = CLIPTextModel(CLIPTextConfig(
        vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
        num_attention_heads=12, max_position_embeddings=77, hidden_act="quick_gelu", projection_dim=768,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    ))
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              clip_sample=False, set_alpha_to_one=False, steps_offset=1)
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text, tokenizer=tokenizer, unet=unet,
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device=device, dtype=dtype)


def unet_tflop(pipe: Any, resolution: int) -> float:
    """FLOPs of one UNet forward on one sample, counted by torch."""
    from torch.utils.flop_counter import FlopCounterMode

    unet = pipe.unet
    latent = torch.randn(1, 4, resolution // 8, resolution // 8, device=unet.device, dtype=unet.dtype)
    context = torch.randn(1, 77, 768, device=unet.device, dtype=unet.dtype)
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        unet(latent, torch.tensor(500, device=unet.device), encoder_hidden_states=context)
    return float(counter.get_total_flops()) / 1e12


def bf16_peak(name: str, override: float | None) -> float | None:
    if override:
        return override
    for key, value in BF16_PEAK_TFLOPS.items():
        if key in name:
            return value
    return None


def gpu_bench(args: argparse.Namespace) -> dict[str, Any]:
    from synscale_generator.backends.diffusers_backends import StableDiffusionBackend

    device = args.device or "cuda"
    if device.startswith("cuda") and not torch.cuda.is_available():
        return {"bench": "generate", "mode": "gpu-sd15", "skipped": "CUDA is not available on this machine"}
    dtype_name = args.dtype or ("bfloat16" if device.startswith("cuda") else "float32")
    res, steps, cfg = args.resolution, args.steps, args.cfg
    pipe = sd15_pipeline(device, getattr(torch, dtype_name))
    options = {"compile": "true"} if args.compile else {}
    settings = BackendSettings.create("sd", "<in-memory sd15-shaped>", device, dtype_name, "", options)
    if args.compile:
        pipe.unet = torch.compile(pipe.unet)
    backend = StableDiffusionBackend(settings, pipeline=pipe)
    params = SamplingParams(cfg, steps, "", res)
    reqs = requests(args.images, "sd15")
    engine = Engine(device, default_batch_size=args.batch_size)
    timed_engine(engine, backend, params, reqs[: args.batch_size], args.batch_size)  # warm-up (and compile)
    _sync(device)
    clock, _pngs = timed_engine(engine, backend, params, reqs, args.batch_size)
    _sync(device)
    engine_s = clock.wall
    engine_rate = len(reqs) / engine_s
    measured = unet_tflop(pipe, res)

    naive = pipe.to(dtype=torch.float32)  # library default dtype; same weights
    naive.unet = getattr(naive.unet, "_orig_mod", naive.unet)
    naive(reqs[0].prompt, num_inference_steps=2, guidance_scale=cfg, height=res, width=res)  # warm-up
    _sync(device)
    start = time.perf_counter()
    for r in reqs[: args.naive_images]:
        image = naive(r.prompt, num_inference_steps=steps, guidance_scale=cfg, height=res, width=res,
                      generator=torch.Generator("cpu").manual_seed(r.seed)).images[0]
        encode_png(image)
    _sync(device)
    naive_rate = args.naive_images / (time.perf_counter() - start)

    name = (torch.cuda.get_device_name(device) if device.startswith("cuda")
            else f"cpu ({platform.processor() or platform.machine()})")
    peak = bf16_peak(name, args.peak_tflops)
    forwards_per_s = engine_rate * steps * (2 if cfg > 1 else 1)
    achieved = forwards_per_s * SD15_TFLOP_PER_FORWARD * (res / 512) ** 2  # nominal figure is at 512^2
    engine.close()
    return {
        "bench": "generate", "mode": "gpu-sd15", "device": name, "dtype": dtype_name, "resolution": res,
        "steps": steps, "cfg": cfg, "compile": bool(args.compile),
        "engine": {"images": len(reqs), "seconds": round(engine_s, 2), "images_per_s": round(engine_rate, 3),
                   "batch_size": engine.last_batch_size},
        "naive": {"images": args.naive_images, "dtype": "float32", "images_per_s": round(naive_rate, 3),
                  "batch_size": 1},
        "speedup": round(engine_rate / naive_rate, 2),
        "unet_tflop_per_forward": {"nominal": SD15_TFLOP_PER_FORWARD, "measured": round(measured, 3)},
        "achieved_tflops": round(achieved, 1),
        "bf16_peak_tflops": peak,
        "mfu": round(achieved / peak, 4) if peak else None,
        "mfu_measured_flops": round(forwards_per_s * measured / peak, 4) if peak else None,
    }


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _quiet() -> None:
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    for module in (diffusers_logging, transformers_logging):
        module.set_verbosity_error()
        module.disable_progress_bar()


def main() -> None:
    _quiet()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gpu-sd15", action="store_true", help="SD-1.5-shaped pipeline on CUDA")
    p.add_argument("--images", type=int, default=None, help="images through the engine")
    p.add_argument("--naive-images", type=int, default=None, help="images through the naive loop")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--cfg", type=float, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--require-weights", action="store_true", help="fail unless trained weights exist")
    p.add_argument("--weights", default="", help="embedded weights file (default: the committed one)")
    p.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    p.add_argument("--no-engine-bf16", dest="engine_bf16", action="store_false",
                   help="CPU mode: do not also run the engine with bf16 autocast")
    p.add_argument("--resolution", type=int, default=512, help="--gpu-sd15 image size")
    p.add_argument("--device", default="", help="--gpu-sd15 device (cpu only to smoke-test the code path)")
    p.add_argument("--dtype", default="", help="--gpu-sd15 dtype (default bfloat16 on CUDA)")
    p.add_argument("--compile", action="store_true", help="torch.compile the engine's UNet (in warm-up)")
    p.add_argument("--peak-tflops", type=float, default=None, help="bf16 dense peak if the card is unknown")
    args = p.parse_args()
    gpu = args.gpu_sd15
    defaults = {"images": 64 if gpu else 256, "naive_images": 3 if gpu else 24, "steps": 50 if gpu else 25,
                "cfg": 7.5 if gpu else 2.0, "batch_size": 16 if gpu else 128}
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(json.dumps(gpu_bench(args) if gpu else cpu_bench(args), indent=2))


if __name__ == "__main__":
    main()
