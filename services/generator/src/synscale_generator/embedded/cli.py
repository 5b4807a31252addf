"""`synscale embedded train-generator`: reproduce the embedded T2I model's weights."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

DEFAULT_OUT = Path("runs/embedded-t2i")


def add_embedded_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register `train-generator` under the shared `synscale embedded` group."""
    from synscale.cli import group

    embedded = group(subparsers, "embedded", "train the embedded (offline) models")
    p = embedded.add_parser(
        "train-generator",
        help="train the embedded text-to-image model on Fashion-MNIST",
        description=(
            "Train the small text-to-image UNet on real Fashion-MNIST with captions in the "
            "prompt strategies' styles. Resumes from OUT/checkpoint.pt when present; writes "
            "OUT/embedded_t2i.safetensors (+ .sha256). The weights are a function of --seed "
            "and the final step count (and, bit for bit, of the thread count)."
        ),
    )
    _add_train_arguments(p)
    p.set_defaults(func=run_train_generator)

    g = embedded.add_parser(
        "generator-grid",
        help="save a classes x CFG sample grid of the embedded text-to-image model",
    )
    g.add_argument("--weights", type=Path, default=None, help="weights file (default: the committed one)")
    g.add_argument("--cfg", default="1,2,4", help="comma-separated CFG values (default 1,2,4)")
    g.add_argument("--per-class", type=int, default=6)
    g.add_argument("--steps", type=int, default=25)
    g.add_argument("--scheduler", default="ddim", choices=("ddim", "dpm"))
    g.add_argument("--eta", type=float, default=1.0)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--out", type=Path, required=True, help="PNG to write")
    g.set_defaults(func=run_generator_grid)


def _add_train_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--minutes", type=float, default=None, help="time budget of this invocation")
    p.add_argument("--steps", type=int, default=None, help="total optimizer steps (exact reproduction)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--ema-decay", type=float, default=0.995, help="EMA decay of the exported weights")
    p.add_argument(
        "--init-from",
        type=Path,
        default=None,
        help="start from this weights file (a second training stage) instead of a random init",
    )
    p.add_argument(
        "--decay-steps",
        type=int,
        default=0,
        help="cosine-decay the learning rate to 0 at this step (use with --steps; 0 = constant lr)",
    )
    p.add_argument("--min-snr-gamma", type=float, default=0.0, help="Min-SNR-γ loss weighting (0 = off)")
    p.add_argument(
        "--autocast", default="", choices=("", "bfloat16"), help="bf16 autocast (faster on AVX512-BF16 CPUs)"
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads; 1 is much faster than 2 on a CPU shared with other jobs",
    )
    p.add_argument(
        "--install", action="store_true", help="also copy the weights into the package's weights folder"
    )
    p.add_argument("--no-progress", action="store_true")


def run_train_generator(args: argparse.Namespace) -> int:
    """Entry point of `synscale embedded train-generator`."""
    from synscale.errors import InvalidInput

    if args.minutes is None and args.steps is None:
        args.minutes = 20.0
    if args.minutes is not None and not args.minutes > 0:
        raise InvalidInput("--minutes", f"must be positive, got {args.minutes}")
    if args.steps is not None and args.steps <= 0:
        raise InvalidInput("--steps", f"must be positive, got {args.steps}")
    if args.batch_size <= 0:
        raise InvalidInput("--batch-size", f"must be positive, got {args.batch_size}")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import shutil

    import torch

    from .train import TrainConfig, train
    from .weights import DEFAULT_WEIGHTS, checksum_path

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    _checkpoint_on_sigterm()
    if not 0 < args.ema_decay < 1:
        raise InvalidInput("--ema-decay", f"must be in (0, 1), got {args.ema_decay}")
    if args.decay_steps < 0 or args.min_snr_gamma < 0:
        raise InvalidInput("--decay-steps/--min-snr-gamma", "must not be negative")
    init = ""
    init_sha = ""
    if args.init_from is not None:
        from .weights import load_weights, sha256_of

        load_weights(args.init_from)  # a missing or altered file fails here, naming it
        init, init_sha = str(args.init_from), sha256_of(args.init_from)
    config = TrainConfig(
        seed=args.seed,
        batch_size=args.batch_size,
        lr=args.lr,
        ema_decay=args.ema_decay,
        decay_steps=args.decay_steps,
        min_snr_gamma=args.min_snr_gamma,
        init_from=init,
        init_sha256=init_sha,
        autocast=args.autocast,
    )
    command = shlex.join(["synscale", *sys.argv[1:]]) if sys.argv[0].endswith("synscale") else ""
    result = train(
        config,
        args.out,
        max_steps=args.steps,
        minutes=args.minutes,
        progress=not args.no_progress,
        command=command,
    )
    assert result.weights is not None
    if args.install:
        shutil.copyfile(result.weights, DEFAULT_WEIGHTS)
        shutil.copyfile(checksum_path(result.weights), checksum_path(DEFAULT_WEIGHTS))
    print(
        json.dumps(
            {
                "weights": str(result.weights),
                "steps": result.steps,
                "images_seen": result.images_seen,
                "loss": round(result.loss, 5),
                "images_per_s": round(result.images_per_s, 1),
                "seconds": round(result.seconds, 1),
                "parameters": result.parameters,
                "threads": torch.get_num_threads(),
                "installed": bool(args.install),
            }
        )
    )
    return 0


def _checkpoint_on_sigterm() -> None:
    """Turn SIGTERM (e.g. a pod eviction) into KeyboardInterrupt, so the training loop's
    `finally` writes a last checkpoint and the next run resumes from the latest step."""
    import signal

    def _interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _interrupt)


def run_generator_grid(args: argparse.Namespace) -> int:
    """Entry point of `synscale embedded generator-grid`."""
    from synscale.datasets.fashion_mnist import CLASS_NAMES
    from synscale.errors import InvalidInput

    from .backend import EmbeddedBackend
    from .grid import sample_grid

    try:
        cfgs = [float(c) for c in args.cfg.split(",") if c.strip()]
    except ValueError as exc:
        raise InvalidInput("--cfg", f"expected comma-separated numbers, got {args.cfg!r}") from exc
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    backend = EmbeddedBackend(args.weights, scheduler=args.scheduler, eta=args.eta)
    grid = sample_grid(backend, list(CLASS_NAMES), cfgs, args.per_class, args.seed, steps=args.steps)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    grid.save(args.out)
    print(json.dumps({"grid": str(args.out), "size": list(grid.size), "cfg": cfgs}))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry (`python -m synscale_generator.embedded.cli`), same arguments."""
    import logging

    parser = argparse.ArgumentParser(prog="synscale embedded train-generator")
    _add_train_arguments(parser)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return run_train_generator(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
