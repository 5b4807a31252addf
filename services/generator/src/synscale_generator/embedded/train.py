"""Training loop of the embedded T2I model on real Fashion-MNIST with strategy captions.

Determinism: every random draw of step `s` (captions, null-prompt dropout, timesteps,
noise) comes from a generator seeded by (seed, s), and the data order of epoch `e` from
one seeded by (seed, e). A checkpoint therefore only needs the model, EMA, optimizer and
step count, and a resumed run continues exactly as an uninterrupted one would (on the same
machine and thread count). The learning rate is constant after warm-up so that stopping
early on a time budget (`--minutes`) yields the same weights as `--steps` at that count.

A second stage can continue from a weights file (`init_from`, e.g. the committed weights)
with a cosine decay of the learning rate to zero over `decay_steps` and a longer EMA: the
committed weights were trained that way (docs/embedded-generator.md, ADR 0017). The decay
makes the run length part of the recipe, so a stage with `decay_steps` is reproduced with
`--steps`, not `--minutes`. `min_snr_gamma` > 0 weights each sample's ε-loss by
min(SNR, γ)/SNR (Hang et al. 2023, "Min-SNR"), which stops the nearly-clean timesteps from
dominating the gradient; the logged loss stays the plain ε-MSE so curves remain comparable.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .captions import all_captions, caption_weights
from .model import ModelConfig, ScheduleConfig, build_unet, count_parameters, to_latent, training_scheduler
from .text import TextEncoder
from .weights import WEIGHTS_NAME, save_weights

log = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pt"
LOSS_LOG = "loss.jsonl"


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 0
    batch_size: int = 128
    lr: float = 1e-3
    warmup_steps: int = 100
    grad_clip: float = 1.0
    ema_decay: float = 0.995
    null_prob: float = 0.1
    checkpoint_every: int = 100
    limit_images: int | None = None  # a fixed prefix of the train split (tests)
    decay_steps: int = 0  # >0: cosine decay of the lr to 0 at this step (then it stays 0)
    min_snr_gamma: float = 0.0  # >0: Min-SNR-γ loss weighting
    init_from: str = ""  # weights file the UNet and EMA start from ("" = random init)
    init_sha256: str = ""  # its checksum: what the fingerprint (resume check) compares
    autocast: str = ""  # "bfloat16": bf16 autocast of the UNet (1.4x on a CPU with AVX512-BF16)
    model: ModelConfig = field(default_factory=ModelConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)

    def fingerprint(self) -> dict[str, Any]:
        """What must match for a checkpoint to be resumed (everything but the bookkeeping)."""
        data = asdict(self)
        data.pop("checkpoint_every")
        data.pop("init_from")  # the path is the machine's business; its checksum is kept
        for key, default in _NEW_FIELDS.items():  # older checkpoints/records lack these
            if data[key] == default:
                data.pop(key)
        data["model"] = self.model.to_dict()
        data["schedule"] = self.schedule.to_dict()
        return json.loads(json.dumps(data))


_NEW_FIELDS: dict[str, Any] = {"decay_steps": 0, "min_snr_gamma": 0.0, "init_sha256": "", "autocast": ""}


@dataclass
class TrainResult:
    steps: int
    images_seen: int
    loss: float
    images_per_s: float
    seconds: float
    weights: Path | None
    parameters: int


def _step_seed(seed: int, kind: int, index: int) -> int:
    return (seed * 1_000_003 + kind * 7_919 + index * 104_729) % (2**63 - 1)


class CaptionTable:
    """Precomputed caption embeddings per class with their sampling weights."""

    def __init__(self, encoder: TextEncoder, captions: list[list[str]], weights: list[list[float]]):
        width = max(len(c) for c in captions)
        self.embeddings = torch.zeros(len(captions), width, encoder.encode(["x"]).shape[1])
        self.weights = torch.zeros(len(captions), width, dtype=torch.float64)
        for k, (caps, w) in enumerate(zip(captions, weights, strict=True)):
            self.embeddings[k, : len(caps)] = encoder.encode(caps)
            self.weights[k, : len(caps)] = torch.tensor(w, dtype=torch.float64)

    @classmethod
    def default(cls, encoder: TextEncoder) -> CaptionTable:
        caps = all_captions()
        return cls(encoder, caps, [caption_weights(i) for i in range(len(caps))])

    def sample(self, labels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """One caption embedding per label, drawn by the captions' weights: (B, 384)."""
        idx = torch.multinomial(self.weights[labels], 1, generator=generator).squeeze(1)
        return self.embeddings[labels, idx]


class Trainer:
    """Owns model, EMA, optimizer and data; `run` trains until a step or time budget."""

    def __init__(
        self,
        config: TrainConfig,
        out_dir: Path,
        images: np.ndarray,
        labels: np.ndarray,
        captions: CaptionTable,
    ) -> None:
        self.config = config
        self.out_dir = out_dir
        if config.limit_images is not None:
            images, labels = images[: config.limit_images], labels[: config.limit_images]
        self.images = torch.from_numpy(np.array(images, dtype=np.uint8, copy=True))
        self.labels = torch.from_numpy(np.array(labels, dtype=np.int64, copy=True))
        if len(self.labels) < config.batch_size:
            raise ValueError(f"batch_size {config.batch_size} exceeds the {len(self.labels)} training images")
        self.captions = captions
        torch.manual_seed(config.seed)
        self.unet = build_unet(config.model)
        self.init_info: dict[str, Any] = {}  # the training record of `init_from`
        if config.init_from:
            self._load_init(Path(config.init_from))
        self.unet.train()
        self.ema = copy.deepcopy(self.unet).requires_grad_(False).eval()
        self.optimizer = torch.optim.AdamW(self.unet.parameters(), lr=config.lr, weight_decay=0.0)
        self.noise = training_scheduler(config.schedule)
        self.alphas = self.noise.alphas_cumprod.to(torch.float32)
        self.step = 0
        self.loss_avg = float("nan")
        self._perm_epoch = -1
        self._perm = torch.empty(0, dtype=torch.int64)

    def _load_init(self, path: Path) -> None:
        """Start from a weights file of the same architecture (its fp16 values, in fp32)."""
        from .weights import load_weights, sha256_of

        if self.config.init_sha256 and sha256_of(path) != self.config.init_sha256:
            raise ValueError(f"{path} does not have the sha256 {self.config.init_sha256} the config names")
        loaded = load_weights(path)
        if loaded.model_config != self.config.model:
            raise ValueError(f"{path} holds a {loaded.model_config} model, not {self.config.model}")
        self.unet.load_state_dict(loaded.unet.state_dict())
        self.init_info = loaded.info

    # -- checkpoints -------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path:
        return self.out_dir / CHECKPOINT_NAME

    def save_checkpoint(self) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.checkpoint_path.with_suffix(".tmp")
        torch.save(
            {
                "fingerprint": self.config.fingerprint(),
                "step": self.step,
                "loss_avg": self.loss_avg,
                "unet": self.unet.state_dict(),
                "ema": self.ema.state_dict(),
                "optimizer": self.optimizer.state_dict(),
            },
            tmp,
        )
        tmp.replace(self.checkpoint_path)

    def try_resume(self) -> bool:
        """Continue from `checkpoint.pt` in the output folder if it is for this config."""
        if not self.checkpoint_path.exists():
            return False
        state = torch.load(self.checkpoint_path, map_location="cpu", weights_only=False)
        if state["fingerprint"] != self.config.fingerprint():
            raise ValueError(
                f"{self.checkpoint_path} was written for a different training config; "
                "use another --out folder or delete the checkpoint"
            )
        self.unet.load_state_dict(state["unet"])
        self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step = int(state["step"])
        self.loss_avg = float(state["loss_avg"])
        return True

    def _log_loss(self, images_per_s: float) -> None:
        """One line per checkpoint in OUT/loss.jsonl: the loss curve of the run."""
        row = {"step": self.step, "loss": round(self.loss_avg, 6), "lr": self._lr(self.step - 1),
               "images_per_s": round(images_per_s, 1), "time": round(time.time(), 1)}
        with (self.out_dir / LOSS_LOG).open("a") as fh:
            fh.write(json.dumps(row) + "\n")

    # -- one step ----------------------------------------------------------------
    def _batch_indices(self, step: int) -> torch.Tensor:
        n, b = len(self.labels), self.config.batch_size
        per_epoch = n // b
        epoch, offset = divmod(step, per_epoch)
        if epoch != self._perm_epoch:
            g = torch.Generator().manual_seed(_step_seed(self.config.seed, 1, epoch))
            self._perm = torch.randperm(n, generator=g)
            self._perm_epoch = epoch
        return self._perm[offset * b : (offset + 1) * b]

    def _lr(self, step: int) -> float:
        cfg = self.config
        warm = min(1.0, (step + 1) / max(1, cfg.warmup_steps))
        if cfg.decay_steps <= 0:
            return cfg.lr * warm
        progress = min(1.0, max(0, step - cfg.warmup_steps) / max(1, cfg.decay_steps - cfg.warmup_steps))
        return cfg.lr * warm * 0.5 * (1.0 + math.cos(math.pi * progress))

    def _autocast(self) -> Any:
        if not self.config.autocast:
            return contextlib.nullcontext()
        return torch.autocast("cpu", dtype=getattr(torch, self.config.autocast))

    def _loss(
        self, pred: torch.Tensor, target: torch.Tensor, alpha: torch.Tensor
    ) -> tuple[torch.Tensor, float]:
        """(the loss to minimise, the plain MSE to report)."""
        gamma = self.config.min_snr_gamma
        if gamma <= 0:  # the plain loss, computed as the first weights were (bit for bit)
            loss = F.mse_loss(pred, target)
            return loss, float(loss.detach())
        per_sample = (pred - target).pow(2).mean(dim=(1, 2, 3))
        mse = float(per_sample.detach().mean())
        snr = alpha / (1 - alpha)
        weight = torch.clamp(snr, max=gamma) / snr
        if self.config.schedule.prediction_type != "epsilon":  # v-prediction: min(SNR, γ)/(SNR+1)
            weight = torch.clamp(snr, max=gamma) / (snr + 1)
        return (weight * per_sample).mean(), mse

    def train_step(self) -> float:
        cfg = self.config
        idx = self._batch_indices(self.step)
        g = torch.Generator().manual_seed(_step_seed(cfg.seed, 2, self.step))
        pixels = self.images[idx].to(torch.float32).div_(127.5).sub_(1.0).unsqueeze(1)
        x0 = to_latent(pixels)
        labels = self.labels[idx]
        text = self.captions.sample(labels, g)
        keep = (torch.rand(len(idx), generator=g) >= cfg.null_prob).to(text.dtype)
        text = (text * keep[:, None]).unsqueeze(1)
        t = torch.randint(0, cfg.schedule.num_train_timesteps, (len(idx),), generator=g)
        noise = torch.randn(x0.shape, generator=g)
        a = self.alphas[t].view(-1, 1, 1, 1)
        noisy = a.sqrt() * x0 + (1 - a).sqrt() * noise
        target = (
            noise if cfg.schedule.prediction_type == "epsilon" else a.sqrt() * noise - (1 - a).sqrt() * x0
        )
        for group in self.optimizer.param_groups:
            group["lr"] = self._lr(self.step)
        with self._autocast():
            pred = self.unet(noisy, t, encoder_hidden_states=text).sample
        loss, mse = self._loss(pred.float(), target, self.alphas[t])
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.unet.parameters(), cfg.grad_clip)
        self.optimizer.step()
        with torch.no_grad():
            ema_params: list[torch.Tensor] = list(self.ema.parameters())
            live: list[torch.Tensor] = list(self.unet.parameters())
            torch._foreach_lerp_(ema_params, live, 1.0 - cfg.ema_decay)
        self.step += 1
        value = mse
        self.loss_avg = value if math.isnan(self.loss_avg) else 0.98 * self.loss_avg + 0.02 * value
        return value

    # -- loop --------------------------------------------------------------------
    def run(
        self,
        max_steps: int | None = None,
        minutes: float | None = None,
        progress: bool = True,
        on_step: Callable[[Trainer], None] | None = None,
    ) -> TrainResult:
        """Train until `max_steps` (total, counting resumed steps) or `minutes` of this call."""
        if max_steps is None and minutes is None:
            raise ValueError("give max_steps or minutes (or both)")
        from tqdm import tqdm

        start, start_step = time.monotonic(), self.step
        deadline = start + minutes * 60 if minutes is not None else math.inf
        bar = tqdm(
            total=max_steps,
            initial=self.step,
            disable=not progress,
            unit="step",
            mininterval=1.0 if sys.stderr.isatty() else 15.0,
            dynamic_ncols=True,
        )
        try:
            while (max_steps is None or self.step < max_steps) and time.monotonic() < deadline:
                self.train_step()
                elapsed = max(time.monotonic() - start, 1e-9)
                rate = (self.step - start_step) * self.config.batch_size / elapsed
                bar.update(1)
                bar.set_postfix(loss=f"{self.loss_avg:.4f}", img_s=f"{rate:.0f}", refresh=False)
                if self.step % self.config.checkpoint_every == 0:
                    self.save_checkpoint()
                    self._log_loss(rate)
                    log.info("step %d loss %.4f %.1f images/s", self.step, self.loss_avg, rate)
                if on_step is not None:
                    on_step(self)
        finally:
            bar.close()
            if self.step > start_step:
                self.save_checkpoint()
        seconds = time.monotonic() - start
        done = self.step - start_step
        return TrainResult(
            steps=self.step,
            images_seen=self.step * self.config.batch_size,
            loss=self.loss_avg,
            images_per_s=done * self.config.batch_size / seconds if seconds > 0 else 0.0,
            seconds=seconds,
            weights=None,
            parameters=count_parameters(self.unet),
        )

    def export(self, path: Path, result: TrainResult, command: str) -> str:
        """Write the EMA weights with their training record; returns the sha256."""
        cfg = self.config
        stage = f" --init-from {Path(cfg.init_from).name}" if cfg.init_from else ""
        if cfg.ema_decay != TrainConfig.ema_decay:
            stage += f" --ema-decay {cfg.ema_decay:g}"
        if cfg.decay_steps:
            stage += f" --decay-steps {cfg.decay_steps}"
        if cfg.min_snr_gamma:
            stage += f" --min-snr-gamma {cfg.min_snr_gamma:g}"
        if cfg.autocast:
            stage += f" --autocast {cfg.autocast}"
        info = {
            "reproduce": (
                f"synscale embedded train-generator --steps {self.step} --seed {cfg.seed} "
                f"--batch-size {cfg.batch_size} --lr {cfg.lr:g} --threads {torch.get_num_threads()}{stage}"
            ),
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "seed": self.config.seed,
            "steps": self.step,
            "batch_size": self.config.batch_size,
            "images_seen": self.step * self.config.batch_size,
            "epochs": round(self.step * self.config.batch_size / len(self.labels), 3),
            "loss_ema": round(self.loss_avg, 5),
            "train_config": self.config.fingerprint(),
            "command": command,
            "parameters": result.parameters,
        }
        if cfg.init_from:  # the stage this one continued: its own record, nested
            info["init"] = {"sha256": cfg.init_sha256, "info": self.init_info}
        return save_weights(self.ema, path, self.config.model, self.config.schedule, info)


def train(
    config: TrainConfig,
    out_dir: Path,
    max_steps: int | None = None,
    minutes: float | None = None,
    progress: bool = True,
    command: str = "",
    encoder: TextEncoder | None = None,
    dataset: tuple[np.ndarray, np.ndarray] | None = None,
) -> TrainResult:
    """Train (resuming from `out_dir/checkpoint.pt` if present) and export the EMA weights."""
    if dataset is None:
        from synscale.datasets import fashion_mnist

        split = fashion_mnist.load("train")
        dataset = (split.images, split.labels)
    captions = CaptionTable.default(encoder or TextEncoder())
    trainer = Trainer(config, out_dir, dataset[0], dataset[1], captions)
    if trainer.try_resume():
        log.info("resumed from %s at step %d", trainer.checkpoint_path, trainer.step)
    result = trainer.run(max_steps=max_steps, minutes=minutes, progress=progress)
    weights = out_dir / WEIGHTS_NAME
    trainer.export(weights, result, command)
    result.weights = weights
    return result
