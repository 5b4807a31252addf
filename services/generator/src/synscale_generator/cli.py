"""`synscale generate`: shards for classes x a CFG grid, plus a sample grid, from one command.

It builds the same GenerationJobs the prompter would send (prompts from the prompter's
strategies when that package is installed) and runs them through the same JobRunner the
worker uses, over a FileStore under --out, so its shards are what a study would hold.
All jobs of one CFG value go to the engine together, so batches span classes.

It also hosts `synscale embedded train-generator`, which the embedded model package
provides.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from synscale import ids
from synscale.classes import BUILTIN_SETS, ClassDef, ClassSet, get_class_set
from synscale.errors import InvalidInput
from synscale.store.file import FileStore
from synscale.v1 import common_pb2, generator_pb2, study_pb2

from .backends import backend_names
from .backends.base import default_device
from .engine import Engine, JobRunner
from .output import grid_png, grid_scale, make_job

log = logging.getLogger(__name__)
GRID_SAMPLES_PER_CFG = 4


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("generate", help="generate image shards for classes x CFG values",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--generator", default="embedded",
                   help="generator name (also its backend unless --backend)")
    p.add_argument("--backend", default="", help=f"one of: {', '.join(backend_names())}")
    p.add_argument("--model-path", default="", help="local model directory (embedded: weights file; "
                   "empty = committed weights)")
    p.add_argument("--classes", default="fashion-mnist",
                   help="class set (fashion-mnist, imagenet) or comma-separated class names")
    p.add_argument("--class-ids", default="", help="restrict the class set to these ids (comma-separated)")
    p.add_argument("--strategy", default="classname", help="prompt strategy (see `synscale prompts`)")
    p.add_argument("--cfg", default="1,2,4", help="comma-separated CFG values (<= 1: unguided)")
    p.add_argument("--n", type=int, default=16, help="images per class and CFG value")
    p.add_argument("--steps", type=int, default=0, help="sampling steps (0: the model's default)")
    p.add_argument("--scheduler", default="", help="sampler (embedded: ddim, dpm; diffusers: ddim, "
                   "euler, dpm, ...)")
    p.add_argument("--resolution", type=int, default=0, help="image size (0: the model's default)")
    p.add_argument("--dtype", default="", help="float32, float16 or bfloat16 (default: bf16 on GPU)")
    p.add_argument("--batch-size", type=int, default=0, help="images per batch (0: automatic)")
    p.add_argument("--negative-prompt", default="")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="backend option, e.g. compile=true, channels_last=true, stage2_path=DIR")
    p.add_argument("--eta", type=float, default=None,
                   help="DDIM eta (default: the backend's, 1.0 embedded / the scheduler's own otherwise)")
    p.add_argument("--device", default="", help="cpu, cuda, cuda:1 (default: cuda if available)")
    p.add_argument("--study", default="cli", help="study id the keys are made under")
    p.add_argument("--out", default="runs/generate", help="output folder (a FileStore lives here)")
    p.add_argument("--bucket", default="synscale")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run_generate)
    _add_embedded(subparsers)


def _add_embedded(subparsers: argparse._SubParsersAction) -> None:
    """`synscale embedded train-generator` comes from the embedded model package."""
    try:
        from synscale_generator.embedded.cli import add_embedded_commands
    except ImportError as exc:
        reason = str(exc)
        from synscale.cli import group

        embedded = group(subparsers, "embedded", "the embedded (offline, Fashion-MNIST) models")
        stub = embedded.add_parser("train-generator", help="train the embedded T2I model (not installed)")

        def missing(_args: argparse.Namespace) -> int:
            print("synscale: error: the embedded T2I trainer (synscale_generator.embedded.cli) is not "
                  f"available in this build: {reason}", file=sys.stderr)
            return 2

        stub.set_defaults(func=missing)
        return
    add_embedded_commands(subparsers)


def parse_cfgs(text: str) -> list[float]:
    from .validation import check_cfg

    try:
        values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise InvalidInput("--cfg", f"expected comma-separated numbers, got {text!r}") from None
    if not values:
        raise InvalidInput("--cfg", "needs at least one value")
    return [check_cfg(v, "--cfg") for v in values]


def parse_options(items: Sequence[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InvalidInput("--option", f"expected KEY=VALUE, got {item!r}")
        out[key.strip()] = value.strip()
    return out


PromptBuilder = Callable[[ClassSet, str, int, str], list[tuple[ClassDef, list[str]]]]
PROMPT_BUILDERS = "synscale.prompt_builders"  # entry-point group (the prompter registers one)


def _cli_classes(classes: str, ids_filter: list[str] | None) -> ClassSet:
    """`--classes`: a built-in set's name, or a comma-separated list of class names."""
    if classes in BUILTIN_SETS:
        return get_class_set(classes, ids=ids_filter, field="--classes")
    names = [c.strip() for c in classes.split(",") if c.strip()]
    entries = [{"id": ids.safe_component(name.lower()), "name": name} for name in names]
    return get_class_set("custom", custom=entries, ids=ids_filter, field="--classes")


def _prompt_builder() -> PromptBuilder | None:
    """The prompter's builder when its distribution is installed (found by entry point, so
    this package imports no other service), else None."""
    found = entry_points(group=PROMPT_BUILDERS)
    return next(iter(found)).load() if found else None


def class_prompts(classes: str, class_ids: str, strategy: str, n: int, study: str,
                  ) -> list[tuple[str, int, list[str]]]:
    """(class_id, class_index, prompt texts) per class (synscale.classes resolves the set).

    The paper's strategies are the prompter's; without it only `classname` is available.
    """
    ids_filter = [c.strip() for c in class_ids.split(",") if c.strip()] or None
    class_set = _cli_classes(classes, ids_filter)
    build = _prompt_builder()
    if build is not None:
        return [(c.id, c.index, texts) for c, texts in build(class_set, strategy, n, study)]
    if strategy != "classname":
        raise InvalidInput("--strategy", "only 'classname' works without the prompter package installed")
    return [(c.id, c.index, [c.name] * n) for c in class_set]


def build_jobs(args: argparse.Namespace) -> dict[float, list[generator_pb2.GenerationJob]]:
    if args.n < 1:
        raise InvalidInput("--n", f"must be >= 1, got {args.n}")
    cfgs = parse_cfgs(args.cfg)
    spec = study_pb2.GeneratorSpec(
        name=args.generator, backend=args.backend or args.generator, model_path=args.model_path,
        resolution=args.resolution, steps=args.steps, scheduler=args.scheduler, dtype=args.dtype,
        batch_size=args.batch_size, cfg_grid=cfgs, negative_prompt=args.negative_prompt,
        options=parse_options(args.option), eta=args.eta,
    )
    per_class = class_prompts(args.classes, args.class_ids, args.strategy, args.n, args.study)
    return {
        cfg: [make_job(args.study, spec, cfg, args.strategy, class_id, texts, class_index=class_index,
                       bucket=args.bucket) for class_id, class_index, texts in per_class]
        for cfg in cfgs
    }


def run_generate(args: argparse.Namespace) -> int:
    out = Path(args.out)
    store = FileStore(out, args.bucket)
    jobs_by_cfg = build_jobs(args)
    runner = JobRunner(store, Engine(args.device or default_device()))
    for jobs in jobs_by_cfg.values():  # fail on any bad job before generating anything
        for job in jobs:
            runner.validate(job)
    total = sum(len(j.prompts) for jobs in jobs_by_cfg.values() for j in jobs)
    written = reused = reused_images = 0
    refs: dict[tuple[float, str], common_pb2.ShardRef] = {}
    started = time.perf_counter()
    with _progress_bar(total, disabled=args.no_progress) as advance:
        finished = 0
        for cfg, jobs in jobs_by_cfg.items():
            for progress in runner.run(jobs):
                advance(finished + progress.done)
                if progress.shard is not None:
                    refs[(cfg, progress.shard.job.class_id)] = progress.shard
                    if progress.reannounced:
                        reused += 1
                        reused_images += progress.shard.count
                    else:
                        written += 1
            finished += sum(len(j.prompts) for j in jobs)
    elapsed = time.perf_counter() - started
    runner.close()
    grid_path = out / f"grid-{ids.safe_component(args.generator)}.png"
    _write_grid(store, jobs_by_cfg, refs, grid_path)
    generated = total - reused_images
    rate = f", {generated / elapsed:.1f} images/s" if generated and elapsed > 0 else ""
    print(f"{len(refs)} shards under {out / args.bucket}: {written} written, {reused} already there")
    print(f"{generated} of {total} images generated in {elapsed:.1f} s on {runner.device}{rate} "
          f"(batch size {runner.engine.last_batch_size or '-'})")
    print(f"sample grid: {grid_path}")
    return 0


def _write_grid(store: FileStore, jobs_by_cfg: dict[float, list[generator_pb2.GenerationJob]],
                refs: dict[tuple[float, str], common_pb2.ShardRef], path: Path) -> None:
    """Rows are classes; each CFG value contributes a block of columns, left to right."""
    from synscale.shards import iter_shard

    classes = [j.job.class_id for j in next(iter(jobs_by_cfg.values()))]
    rows: list[list[bytes]] = []
    for class_id in classes:
        row: list[bytes] = []
        for cfg in jobs_by_cfg:
            ref = refs.get((cfg, class_id))
            if ref is None:
                continue
            samples = list(iter_shard(store.get(ref.key)))[:GRID_SAMPLES_PER_CFG]
            row += [s.png for s in samples]
        rows.append(row)
    from synscale.shards import decode_png

    size = decode_png(rows[0][0]).width if rows and rows[0] else 32
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(grid_png(rows, scale=grid_scale(size), block=GRID_SAMPLES_PER_CFG, row_labels=classes,
                              block_labels=[f"CFG {cfg:g}" for cfg in jobs_by_cfg]))


class _progress_bar:
    """A rich progress bar over images (or nothing when disabled or not a terminal)."""

    def __init__(self, total: int, disabled: bool) -> None:
        self.total = total
        self.disabled = disabled
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self):  # type: ignore[no-untyped-def]
        if self.disabled:
            return lambda done: None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._progress = Progress(TextColumn("generating"), BarColumn(), MofNCompleteColumn(),
                                  TimeRemainingColumn(), transient=False)
        self._progress.start()
        self._task = self._progress.add_task("images", total=self.total)
        return lambda done: self._progress.update(self._task, completed=done)

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()
