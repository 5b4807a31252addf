"""Training the embedded reference CNN on real Fashion-MNIST (`synscale embedded train-reference`).

Deterministic from a seed: the data order, dropout and initialisation all come from one
torch generator, deterministic algorithms are enforced and the thread count is fixed (CPU
reductions may associate differently with another thread count). Same seed + same thread
count + same torch build → identical weight bytes.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from synscale.datasets import fashion_mnist
from synscale_scorer.reference.embedded import FashionCNN, file_sha256

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 0
    epochs: int = 6
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 1e-4
    threads: int = 2
    limit: int = 0  # >0: train and test on the first `limit` images only (smoke tests)


@dataclass(frozen=True)
class TrainReport:
    test_accuracy: float
    train_seconds: float
    epochs: int
    seed: int
    sha256: str
    path: str


def _to_tensor(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(images)).float().div_(255.0).unsqueeze(1)


@torch.no_grad()
def evaluate(model: FashionCNN, images: np.ndarray, labels: np.ndarray, batch: int = 1000) -> float:
    """Top-1 accuracy on uint8 (N, 32, 32) images."""
    model.eval()
    correct = 0
    for i in range(0, len(labels), batch):
        logits = model(_to_tensor(images[i : i + batch]))
        correct += int((logits.argmax(1).numpy() == labels[i : i + batch]).sum())
    return correct / max(1, len(labels))


def fit(
    images: np.ndarray,
    labels: np.ndarray,
    *,
    steps: int,
    batch_size: int,
    lr: float,
    weight_decay: float,
    generator: torch.Generator,
    log_every: int = 0,
) -> FashionCNN:
    """The reference recipe: a fresh FashionCNN trained for `steps` AdamW steps on uint8
    (N, 32, 32) images with a one-cycle lr and random horizontal flips.

    Shared by the reference itself (real data) and by CAS (synthetic data, `cas.py`), so
    "the same recipe" in a train-on-synthetic / test-on-real comparison is one function.
    Epochs are drawn in full permutations of the data; the last one may be cut short.
    """
    x_all = _to_tensor(images)
    y_all = torch.from_numpy(np.array(labels, dtype=np.int64))
    model = FashionCNN()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    step, total, seen = 0, 0.0, 0
    while step < steps:
        order = torch.randperm(len(y_all), generator=generator)
        for i in range(0, len(y_all), batch_size):
            if step >= steps:
                break
            idx = order[i : i + batch_size]
            x = x_all[idx]
            # Horizontal flips: Fashion-MNIST classes are mirror-symmetric in meaning.
            flip = torch.rand(len(idx), generator=generator) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
            loss = loss_fn(model(x), y_all[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            total += loss.item() * len(idx)
            seen += len(idx)
            if log_every and step % log_every == 0:
                log.info("step %d/%d loss %.4f", step, steps, total / max(1, seen))
                total, seen = 0.0, 0
    return model.eval()


def train_reference(out: Path, cfg: TrainConfig) -> TrainReport:
    """Train, evaluate on the real test split, write safetensors + .sha256 + .json card."""
    from safetensors.torch import save_file

    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    torch.use_deterministic_algorithms(True)
    gen = torch.Generator().manual_seed(cfg.seed)

    train = fashion_mnist.load("train")
    test = fashion_mnist.load("test")
    images = train.images[: cfg.limit or None]
    labels = train.labels[: cfg.limit or None]
    steps_per_epoch = (len(labels) + cfg.batch_size - 1) // cfg.batch_size
    start = time.perf_counter()
    model = fit(
        images, labels, steps=cfg.epochs * steps_per_epoch, batch_size=cfg.batch_size, lr=cfg.lr,
        weight_decay=cfg.weight_decay, generator=gen, log_every=steps_per_epoch,
    )
    seconds = time.perf_counter() - start
    n_test = cfg.limit or len(test)
    accuracy = evaluate(model, test.images[:n_test], test.labels[:n_test])
    log.info("test accuracy %.4f after %.0f s", accuracy, seconds)

    out.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    # One metadata key: safetensors writes a multi-key header in hash order, which would
    # make the file bytes (and checksum) differ between runs with identical weights.
    save_file(state, str(out), metadata={"synscale": json.dumps(asdict(cfg), sort_keys=True)})
    digest = file_sha256(out)
    out.with_name(out.name + ".sha256").write_text(f"{digest}  {out.name}\n")
    report = TrainReport(accuracy, round(seconds, 1), cfg.epochs, cfg.seed, digest, str(out))
    card = {"config": asdict(cfg), "report": {**asdict(report), "path": out.name},
            "torch": torch.__version__, "test_images": n_test}
    out.with_name(out.stem + ".json").write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    return report
