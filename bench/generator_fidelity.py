"""How much of the real distribution the embedded generator's images carry (issue 12).

For each cell (prompt = class name, one CFG value) it generates N images per class with
the demo's sampler (stochastic DDIM, 10 steps; cached in --cache), then reports:

- CAS: the reference CNN trained on the cell's images with the reference recipe, tested
  on the 10,000 real test images (`synscale_scorer.cas`), with its Wilson interval; the
  same classifier trained on N real training images per class is the `real` row;
- recognizability: accuracy of the committed real-trained reference on the images;
- FD_ref: Fréchet distance between the reference CNN's 128-d features of the cell and of
  the real test set (a Fashion-MNIST-sized FID: Inception-v3 on 299x299 upsampled 32x32
  greyscale costs minutes per cell on a CPU and measures ImageNet features);
- near-duplicate rate: share of images whose nearest same-class neighbour (pixel RMS
  distance) is closer than the 5th percentile of the same statistic on N real images per
  class (so real scores 0.05 by construction; collapse shows as much more);
- intensity/size statistics vs real: mean pixel, ink share (pixels > 0.1), mean ink
  intensity, ink bounding-box height and width.

Prints one JSON object (and writes it to --out).

    python bench/generator_fidelity.py --cfg 1,2,4 --per-class 64 [--weights FILE] [--out x.json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from synscale.datasets import fashion_mnist


def generate(weights: Path | None, cfg: float, per_class: int, steps: int, cache: Path) -> np.ndarray:
    """uint8 (10, per_class, 32, 32): image j of class k has seed 10_000 + j (all classes)."""
    from synscale_generator.embedded.backend import EmbeddedBackend
    from synscale_generator.embedded.weights import DEFAULT_WEIGHTS, sha256_of

    sha = sha256_of(weights or DEFAULT_WEIGHTS)[:12]
    path = cache / f"{sha}-cfg{cfg:g}-s{steps}-n{per_class}.npz"
    if path.exists():
        return np.load(path)["images"]
    for bigger in sorted(cache.glob(f"{sha}-cfg{cfg:g}-s{steps}-n*.npz")):  # seeds are nested
        if int(bigger.stem.rsplit("-n", 1)[1]) >= per_class:
            return np.load(bigger)["images"][:, :per_class]
    backend = EmbeddedBackend(weights, scheduler="ddim", eta=1.0)
    out = np.zeros((len(fashion_mnist.CLASSES), per_class, 32, 32), np.uint8)
    chunk = 250
    for k, name in enumerate(fashion_mnist.CLASS_NAMES):
        for start in range(0, per_class, chunk):
            seeds = list(range(10_000 + start, 10_000 + min(per_class, start + chunk)))
            imgs = backend.generate([name] * len(seeds), seeds, cfg, steps)
            out[k, start : start + len(seeds)] = np.stack([np.asarray(im) for im in imgs])
    cache.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, images=out)
    return out


def real_images(per_class: int) -> np.ndarray:
    train = fashion_mnist.load("train")
    return np.stack([train.images[idx[:per_class]] for idx in train.per_class_indices()])


def image_stats(images: np.ndarray) -> dict[str, float]:
    """Intensity and size statistics of uint8 (K, N, 32, 32) images, averaged."""
    x = images.reshape(-1, 32, 32).astype(np.float32) / 255.0
    ink = x > 0.1
    rows, cols = ink.any(axis=2), ink.any(axis=1)

    def extent(mask: np.ndarray) -> np.ndarray:
        first = mask.argmax(axis=1)
        last = mask.shape[1] - 1 - mask[:, ::-1].argmax(axis=1)
        return np.where(mask.any(axis=1), last - first + 1, 0)

    ink_sum = ink.sum(axis=(1, 2))
    return {
        "mean_pixel": round(float(x.mean()), 4),
        "ink_share": round(float(ink.mean()), 4),
        "ink_intensity": round(float((x * ink).sum() / max(1, ink_sum.sum())), 4),
        "height": round(float(extent(rows).mean()), 2),
        "width": round(float(extent(cols).mean()), 2),
        "pixel_std_within_class": round(float(images.astype(np.float32).std(axis=1).mean() / 255.0), 4),
    }


def nn_distances(images: np.ndarray) -> np.ndarray:
    """Per image, the pixel-RMS distance to its nearest neighbour within its class."""
    out = []
    for cls in images:
        x = torch.from_numpy(cls.reshape(len(cls), -1).astype(np.float32) / 255.0)
        d = torch.cdist(x, x).fill_diagonal_(float("inf"))
        out.append((d.min(dim=1).values / np.sqrt(x.shape[1])).numpy())
    return np.concatenate(out)


def reference_features(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(predicted labels, 128-d features) of the committed real-trained reference CNN."""
    from synscale_scorer.reference.embedded import load_embedded

    model = load_embedded()
    preds, feats = [], []
    with torch.inference_mode():
        for i in range(0, len(images), 1000):
            x = torch.from_numpy(np.ascontiguousarray(images[i : i + 1000])).float().div(255.0).unsqueeze(1)
            logits, f = model.forward_features(x)
            preds.append(logits.argmax(1).numpy())
            feats.append(f.double().numpy())
    return np.concatenate(preds), np.concatenate(feats)


def measure(images: np.ndarray, real_nn_threshold: float, test_feats: np.ndarray, recipe: object) -> dict:
    from synscale_scorer.cas import classification_accuracy_score
    from synscale_scorer.stats import fid_of_rows

    k, n = images.shape[:2]
    flat = images.reshape(k * n, 32, 32)
    labels = np.repeat(np.arange(k), n)
    t0 = time.perf_counter()
    cas = classification_accuracy_score(flat, labels, recipe)  # type: ignore[arg-type]
    pred, feats = reference_features(flat)
    nn = nn_distances(images)
    return {
        "cas": round(cas.accuracy, 4),
        "cas_interval": [round(cas.low, 4), round(cas.high, 4)],
        "cas_per_class": [round(v, 3) for v in cas.per_class],
        "cas_steps": cas.steps,
        "cas_seconds": round(time.perf_counter() - t0, 1),
        "recognizability_acc": round(float((pred == labels).mean()), 4),
        "fd_ref": round(fid_of_rows(test_feats, feats), 3),
        "near_duplicate_rate": round(float((nn < real_nn_threshold).mean()), 4),
        "nn_distance_median": round(float(np.median(nn)), 4),
        "stats": image_stats(images),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--weights", type=Path, default=None)
    parser.add_argument("--cfg", default="1,2,4")
    parser.add_argument("--per-class", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-real", action="store_true", help="skip the real-data row")
    parser.add_argument("--cas-seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, default=Path("runs/fidelity-cache"))
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(args.threads)
    from synscale_scorer.cas import CasRecipe

    recipe = CasRecipe(seed=args.cas_seed)
    test = fashion_mnist.load("test")
    _, test_feats = reference_features(np.asarray(test.images))
    real = real_images(args.per_class)
    real_nn = nn_distances(real)
    threshold = float(np.quantile(real_nn, 0.05))
    result: dict = {
        "per_class": args.per_class,
        "steps": args.steps,
        "sampler": "ddim eta=1",
        "cas_recipe": recipe.__dict__,
        "near_duplicate_threshold": round(threshold, 4),
        "weights": str(args.weights or "committed"),
        "cells": {},
    }
    from synscale_generator.embedded.weights import DEFAULT_WEIGHTS, sha256_of

    result["weights_sha256"] = sha256_of(args.weights or DEFAULT_WEIGHTS)
    if not args.no_real:
        result["real"] = measure(real, threshold, test_feats, recipe)
        print(json.dumps({"real": result["real"]}), flush=True)
    for cfg in [float(c) for c in args.cfg.split(",") if c.strip()]:
        t0 = time.perf_counter()
        images = generate(args.weights, cfg, args.per_class, args.steps, args.cache)
        gen_s = time.perf_counter() - t0
        row = measure(images, threshold, test_feats, recipe)
        row["generate_seconds"] = round(gen_s, 1)
        result["cells"][f"classname cfg={cfg:g}"] = row
        print(json.dumps({f"cfg={cfg:g}": row}), flush=True)
    text = json.dumps(result, indent=2)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    print(text)
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    print(f"# result digest {digest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
