"""Severity calibration of the embedded OOD suite (`synscale_trainer.ood`).

For each shift it sweeps a few severities over the 10,000 Fashion-MNIST test images and
reports the accuracy of the committed real-trained reference CNN (the scorer's
`fashion_mnist_cnn`, 93% on the clean test set). The suite's constants were chosen from
this sweep as the severity whose accuracy is nearest the middle of the 40–75% target;
`suite` re-measures the constants in `ood.py` and says whether each is inside the target.
The old sets (`inverted`, `noise`, pure-edge `sketch`, ...) are measured for comparison.

Prints one JSON object (and writes it to --out).

    python bench/ood_calibration.py [--out bench/results/ood_calibration.json] [--limit 0]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from synscale.datasets import fashion_mnist

TARGET = (0.40, 0.75)
SWEEP: dict[str, list[float]] = {
    "rotation": [10, 15, 20, 25, 30, 40],
    "scale": [0.7, 0.65, 0.6, 0.55, 0.5],
    "translation": [3, 4, 5, 6],
    "blur": [0.8, 1.0, 1.1, 1.2, 1.3, 1.6],
    "contrast": [0.6, 0.5, 0.4, 0.3, 0.2],
    "elastic": [3.0, 4.0, 5.0, 6.0],
    "edge-sketch": [0.0, 0.35, 0.5, 0.6, 0.7],
}


def accuracy(model: torch.nn.Module, images: np.ndarray, labels: np.ndarray) -> float:
    correct = 0
    with torch.inference_mode():
        for i in range(0, len(labels), 2000):
            x = torch.from_numpy(np.ascontiguousarray(images[i : i + 2000])).float().div(255.0).unsqueeze(1)
            correct += int((model(x).argmax(1).numpy() == labels[i : i + 2000]).sum())
    return correct / len(labels)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--limit", type=int, default=0, help="first N test images only (0 = all)")
    parser.add_argument("--sweep-limit", type=int, default=2000, help="test images per sweep point")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--only", default="", help="comma-separated set names: re-measure just these, updating --out in place"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from synscale_scorer.reference.embedded import load_embedded
    from synscale_trainer import evalsets, ood

    model = load_embedded()
    test = fashion_mnist.load("test")
    n = args.limit or len(test)
    images, labels, idx = np.asarray(test.images[:n]), np.asarray(test.labels[:n]), np.arange(n)
    t0 = time.perf_counter()
    result: dict = {
        "reference": "scorer fashion_mnist_cnn", "test_images": n, "target": TARGET,
        "clean": round(accuracy(model, images, labels), 4), "sweep": {}, "suite": {}, "legacy": {},
    }
    sub = np.linspace(0, n - 1, min(n, args.sweep_limit)).round().astype(np.int64)  # strided, all classes
    result["sweep_images"] = len(sub)
    only = {x for x in args.only.split(",") if x}
    if only and args.out and args.out.exists():
        previous = json.loads(args.out.read_text())
        for key in ("sweep", "suite", "legacy"):
            result[key] = {k: v for k, v in previous.get(key, {}).items() if k not in only}
    wanted = (lambda name: name in only) if only else (lambda name: True)
    for name, values in SWEEP.items():
        if not wanted(name):
            continue
        param, make = ood.SEVERITY[name]
        rows = [{param: v, "accuracy": round(accuracy(model, make(v)(images[sub], sub), labels[sub]), 4)}
                for v in values]
        result["sweep"][name] = rows
    for name, transform in ood.SHIFTS.items():
        if not wanted(name):
            continue
        acc = accuracy(model, transform(images, idx), labels)
        result["suite"][name] = {"accuracy": round(acc, 4), "in_target": TARGET[0] <= acc <= TARGET[1]}
    for name in evalsets.LEGACY_OOD:
        if not wanted(name):
            continue
        acc = accuracy(model, evalsets.OOD_TRANSFORMS[name](images, idx), labels)
        result["legacy"][name] = round(acc, 4)
    key = f"seconds ({','.join(sorted(only))})" if only else "seconds"
    result[key] = round(time.perf_counter() - t0, 1)
    if only and args.out and args.out.exists():
        result = {**json.loads(args.out.read_text()), **result}
    text = json.dumps(result, indent=2)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
