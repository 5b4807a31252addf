"""`synscale train`: train one model on cells and/or real data, evaluate ID + OOD, print a table."""

from __future__ import annotations

import argparse
from pathlib import Path

from synscale.config import RuntimeConfig, make_store
from synscale.errors import InvalidInput
from synscale.store.base import ObjectStore
from synscale.store.file import FileStore
from synscale.study import TrainingRecipe
from synscale.v1 import common_pb2, trainer_pb2
from synscale_trainer import jobs
from synscale_trainer.plan import Cell
from synscale_trainer.train import TrainOptions, run_training


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("train", help="train and evaluate one model (supervised or CLIP)")
    p.add_argument("--cells", default="", help="comma-separated <generator>/<cfg>/<strategy> synthetic cells")
    p.add_argument("--study", required=True, help="study id the cells belong to")
    p.add_argument("--store", default="", help="FileStore root directory (default: from the environment)")
    p.add_argument("--bucket", default="synscale")
    p.add_argument("--n", type=int, default=100, help="synthetic images per class (real with --real-only)")
    p.add_argument("--real-per-class", type=int, default=0, help="real images per class mixed in")
    p.add_argument("--class-n", default="", metavar="ID=N,...|@FILE.json",
                   help="a per-class allocation of the synthetic images (every class; wins over --n)")
    p.add_argument("--real-only", action="store_true", help="train on --n real images per class, no cells")
    p.add_argument(
        "--arch",
        default="embedded-cnn",
        help="embedded-cnn, embedded-resnet, resnet50, vit_b_16, "
        "timm/<model>; with --kind clip an open_clip model (embedded-clip, ViT-B-16)",
    )
    p.add_argument("--kind", choices=("supervised", "clip"), default="")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval", default="", help="comma-separated eval sets (default: ID test + the OOD suite)")
    p.add_argument(
        "--eval-path",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="local folder of an eval set (ImageNet suites)",
    )
    p.add_argument("--eval-limit", type=int, default=0, help="at most this many images per eval set")
    p.add_argument("--class-set", default="", choices=("", "fashion-mnist", "imagenet"))
    p.add_argument("--class-ids", default="", help="comma-separated class ids restricting the class set")
    p.add_argument("--real-path", default="", help="ImageFolder root of real training images (ImageNet)")
    p.add_argument("--image-size", type=int, default=0)
    p.add_argument("--epochs", type=float, default=None)
    p.add_argument("--min-steps", type=int, default=None)
    p.add_argument("--max-steps", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--workers", type=int, default=2, help="data-loader worker processes")
    p.add_argument("--device", default="", help="cpu, cuda, cuda:1 (default: cuda when available)")
    p.add_argument("--cache-dir", default="", help="local shard cache (default: <store>/../cache/shards)")
    p.add_argument("--json", action="store_true", help="print the RunResult as JSON instead of a table")
    p.set_defaults(func=_train)


def _kind(args: argparse.Namespace) -> str:
    if args.kind:
        return str(args.kind)
    return "clip" if "clip" in args.arch.lower() or args.arch.startswith("ViT-") else "supervised"


def build_job(args: argparse.Namespace, bucket: str) -> trainer_pb2.TrainingJob:
    kind = _kind(args)
    overrides = {
        k: getattr(args, k)
        for k in ("epochs", "min_steps", "max_steps", "batch_size", "lr")
        if getattr(args, k) is not None
    }
    recipe = TrainingRecipe(name=args.arch, kind=kind, arch=args.arch, **overrides)  # type: ignore[arg-type]
    if args.real_only:
        cells: list[Cell] = []
        n_synth, n_real = 0, args.real_per_class or args.n
    else:
        cells = [Cell.parse(c, field="cells") for c in args.cells.split(",") if c.strip()]
        if not cells:
            raise InvalidInput("--cells", "give at least one cell, or --real-only")
        n_synth, n_real = args.n, args.real_per_class
    eval_paths = {}
    for item in args.eval_path:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise InvalidInput("--eval-path", f"{item!r} is not NAME=DIR")
        eval_paths[name] = path
    return trainer_pb2.TrainingJob(
        study_id=args.study,
        kind=kind,
        arch=args.arch,
        cells=[common_pb2.CellId(generator=c.generator, cfg=c.cfg, strategy=c.strategy) for c in cells],
        n_per_class=n_synth,
        real_per_class=n_real,
        seed=args.seed,
        eval_sets=[s for s in args.eval.split(",") if s.strip()],
        recipe_json=recipe.recipe_json(),
        bucket=bucket,
        class_set=args.class_set,
        real_path=args.real_path,
        eval_paths=eval_paths,
        image_size=args.image_size,
        eval_limit=args.eval_limit,
        class_ids=[c for c in args.class_ids.split(",") if c.strip()],
        class_n_per_class=_class_n(args.class_n),
    )


def _class_n(text: str) -> dict[str, int]:
    """`--class-n`: "id=n,id=n", or "@file.json" holding {id: n} or the plan of `synscale plan --json`."""
    if not text:
        return {}
    if text.startswith("@"):
        import json

        data = json.loads(Path(text[1:]).read_text())
        if isinstance(data.get("allocation"), dict):  # the plan `synscale plan --json` wrote
            data = data["allocation"]["images_per_class"]
        return {str(k): int(v) for k, v in data.items()}
    out = {}
    for item in text.split(","):
        cid, sep, n = item.partition("=")
        if not sep or not cid.strip() or not n.strip().isdigit():
            raise InvalidInput("--class-n", f"{item!r} is not CLASS_ID=IMAGES")
        out[cid.strip()] = int(n)
    return out


def _store(args: argparse.Namespace) -> tuple[ObjectStore, Path]:
    if args.store:
        root = Path(args.store)
        return FileStore(root, args.bucket), root.parent / "cache" / "shards"
    cfg = RuntimeConfig.from_env()
    return make_store(cfg), cfg.data_dir / "cache" / "shards"


def format_table(result: trainer_pb2.RunResult) -> str:
    lines = [f"{'eval set':<20} {'n':>6} {'top-1':>7} {'top-5':>7} {'loss':>7}"]
    for e in result.evals:
        lines.append(f"{e.set_name:<20} {e.n:>6} {e.top1:>7.4f} {e.top5:>7.4f} {e.loss:>7.4f}")
    return "\n".join(lines)


def _train(args: argparse.Namespace) -> int:
    store, default_cache = _store(args)
    job = jobs.normalise(build_job(args, store.bucket))
    options = TrainOptions(
        cache_dir=Path(args.cache_dir) if args.cache_dir else default_cache,
        num_workers=args.workers,
        device=args.device,
    )
    result = run_training(job, store, options=options)  # progress: the trainer's INFO log
    if args.json:
        print(jobs.result_to_json(result).decode())
        return 0
    print(
        f"run {result.run_id} ({result.job.kind} {result.job.arch}): {result.train_images} training images, "
        f"{result.steps} steps, train loss {result.train_loss:.4f}, "
        f"{result.train_seconds:.0f}s on {result.device}"
    )
    print(format_table(result))
    print(f"result: {jobs.result_key(job)}  checkpoint: {result.checkpoint_key}")
    return 0 if result.status == "done" else 1
