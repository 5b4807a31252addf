"""Bookkeeping at study scale: rebuild, per-event handling, completeness and planning vs shard count.

Builds synthetic studies of fake shard objects (metadata only: empty objects under the
real keys, the way issue 15 measured) and times the real code paths on them:

- rebuild: `Orchestrator.study()` of a restarted analyzer (one pass over the listing);
- per event: the analyzer's `on_shard` and the scorer worker's `ShardReadyHandler` for
  shards that arrive after the rebuild (the scorer's partial computation is replaced by
  a stat of a pre-written partial: what is timed is its bookkeeping, not the networks);
- completeness: the analyzer's `complete()` and the scorer's full check of a cell;
- planning: `plan_training_set` of one cell at the smallest and the largest N.

Layouts: "issue" (10 cells × 100 classes, 240 runs) and "paper" (16 cells × 1000 classes,
2048 runs), shards of 64. The old code path (bench/scale_baseline.py) runs on the same
store for the ratio. A whole study's bookkeeping (rebuild + one analyzer and one scorer
event per shard + a completeness check and the runs' planning per cell) is fitted as
t = a·n^k on log-log axes (OLS, t-interval) and extrapolated to a 64M-image study
(1M shards). Prints one JSON object.

    nice -n 10 python bench/scale.py [--backend fs|minio|both] [--layout issue|paper|both]
        [--sizes 10000,100000,1000000] [--events 40] [--baseline-events 5] [--root /tmp]

MinIO needs S3_ENDPOINT/S3_ACCESS_KEY/S3_SECRET_KEY (python -m synscale.testing.with_infra).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import scale_baseline as old

from synscale import layout, plan
from synscale.bus.base import Message
from synscale.bus.memory import MemoryBus
from synscale.cells import Cell
from synscale.config import RuntimeConfig, Topics
from synscale.runtime import ServiceContext
from synscale.store.base import ObjectStore
from synscale.store.file import FileStore
from synscale.study import StudySpec, parse_study
from synscale.v1 import common_pb2, generator_pb2

SHARD = 64  # images per shard, as the issue measured
IMAGES_64M = 64_000_000


@dataclass(frozen=True)
class Layout:
    name: str
    cells: int
    classes: int
    sizes: int  # points of the images_per_class grid
    seeds: int  # training seeds: runs = cells × sizes × seeds

    @property
    def runs(self) -> int:
        return self.cells * self.sizes * self.seeds


LAYOUTS = {"issue": Layout("issue", 10, 100, 6, 4), "paper": Layout("paper", 16, 1000, 8, 16)}


def spec_for(lay: Layout, shards_per_class: int) -> StudySpec:
    """A custom-class study with `lay.cells` CFG values of one generator (one cell each)."""
    top = SHARD * shards_per_class
    sizes = sorted({max(1, top * (i + 1) // lay.sizes) for i in range(lay.sizes)})
    doc = {
        "name": f"scale-{lay.name}-{shards_per_class}",
        "classes": {"set": "custom", "custom": [{"id": f"c{i:04d}", "name": f"class {i}"}
                                                for i in range(lay.classes)]},
        "generators": [{"name": "fake", "backend": "embedded",
                        "cfg": [1.0 + 0.5 * i for i in range(lay.cells)]}],
        "strategies": ["classname"],
        "images_per_class": sizes,
        "real": {"set": "none"},
        "scoring": {"recognizability": False, "diversity": False, "fid": False, "lpips": False},
        "training": [{"name": "cnn", "arch": "embedded-cnn", "seeds": list(range(lay.seeds))}],
        "evaluation": {"ood": []},
    }
    return parse_study(json.dumps(doc), "bench/scale.py")


# ------------------------------------------------------------------- the fake study
@dataclass
class Study:
    spec: StudySpec
    lay: Layout
    shards_per_class: int
    cells: list[Cell]
    class_ids: tuple[str, ...]
    analyzer_events: list[tuple[Cell, str, int]]  # (cell, class, start): shards held out
    scorer_events: list[tuple[Cell, str, int]]  # the ones of cell 0
    final: tuple[Cell, str, int]  # cell 0's last missing shard: completes it after the timed events

    @property
    def sid(self) -> str:
        return self.spec.study_id

    @property
    def n_shards(self) -> int:
        return len(self.cells) * len(self.class_ids) * self.shards_per_class


def design(lay: Layout, shards_per_class: int, events: int) -> Study:
    """Which shards exist at the restart, and which arrive as events after it.

    Held out: the last shard of the first `events` classes of cell 0 (scorer and analyzer
    events) and of a few classes of every other cell, so every cell has runs still
    waiting for data — a study in the middle of generation.
    """
    spec = spec_for(lay, shards_per_class)
    cells = [Cell.of(c) for c in plan.cells_of(spec)]
    class_ids = plan.study_classes(spec).ids
    last = SHARD * (shards_per_class - 1)
    e0 = min(events, len(class_ids) - 1)
    per_other = max(1, events // (4 * max(1, len(cells) - 1)))
    scorer = [(cells[0], class_ids[i], last) for i in range(e0)]
    others = [(c, class_ids[i], last) for c in cells[1:] for i in range(per_other)]
    final = (cells[0], class_ids[e0], last)  # arrives last, after the timed events: completes cell 0
    return Study(spec, lay, shards_per_class, cells, class_ids, scorer + others, scorer, final)


def shard_keys(st: Study, held: set[tuple[Cell, str, int]]) -> list[str]:
    return [layout.shard_key(st.sid, c.generator, c.cfg, c.strategy, cid, s * SHARD, SHARD)
            for c in st.cells for cid in st.class_ids for s in range(st.shards_per_class)
            if (c, cid, s * SHARD) not in held]


def partial_keys(st: Study, held: set[tuple[Cell, str, int]]) -> list[str]:
    c = st.cells[0]
    return [layout.score_key(st.sid, c.generator, c.cfg, c.strategy,
                             f"partials/{layout.partial_name(cid, s * SHARD, SHARD)}.npz")
            for cid in st.class_ids for s in range(st.shards_per_class) if (c, cid, s * SHARD) not in held]


class Backend:
    """Writes empty objects fast (not timed): direct files on the FileStore, parallel PUTs on S3."""

    def __init__(self, kind: str, root: Path) -> None:
        self.kind = kind
        self.root = root
        if kind == "fs":
            self.store: ObjectStore = FileStore(root, "scale")
        else:
            from synscale.store.minio import MinioStore

            env = os.environ
            self.store = MinioStore(env["S3_ENDPOINT"], env["S3_ACCESS_KEY"], env["S3_SECRET_KEY"],
                                    f"scale-{uuid.uuid4().hex[:10]}")

    def touch(self, keys: list[str]) -> None:
        if isinstance(self.store, FileStore):
            base = self.store.base
            made: set[str] = set()
            for key in keys:
                folder = key.rpartition("/")[0]
                if folder not in made:
                    (base / folder).mkdir(parents=True, exist_ok=True)
                    made.add(folder)
                os.close(os.open(base / key, os.O_CREAT | os.O_WRONLY, 0o644))
            return
        with ThreadPoolExecutor(32) as pool:
            list(pool.map(lambda k: self.store.put(k, b""), keys))

    def close(self) -> None:
        if self.kind == "fs":
            shutil.rmtree(self.root / "scale", ignore_errors=True)
        else:
            with ThreadPoolExecutor(32) as pool:
                list(pool.map(self.store.delete, list(self.store.keys(""))))


def ready_event(st: Study, cell: Cell, class_id: str, start: int, bucket: str) -> bytes:
    key = layout.shard_key(st.sid, cell.generator, cell.cfg, cell.strategy, class_id, start, SHARD)
    job = common_pb2.JobIdentity(study_id=st.sid, cell=cell.proto(), class_id=class_id, seed_start=start,
                                 seed_count=SHARD)
    ref = common_pb2.ShardRef(bucket=bucket, key=key, sha256="0" * 64, count=SHARD, job=job)
    return generator_pb2.ShardReady(shard=ref).SerializeToString()


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def _context(store: ObjectStore) -> ServiceContext:
    topics = Topics(default_partitions=3)
    bus = MemoryBus(3, retention=10_000)
    ctx = ServiceContext(bus, store, topics, RuntimeConfig(runtime="embedded", topics=topics))
    topics.ensure_all(bus)
    return ctx


def _bookkeeping_scorer(store: ObjectStore) -> Any:
    """The scorer service with its one compute step replaced by a stat of the stored partial."""
    from synscale_scorer.service import ScorerService

    class BookkeepingScorer(ScorerService):
        def ensure_partial(self, plan: Any, shard: Any, data: bytes | None = None) -> bool:
            return self.store.stat(self.partial_key(plan, shard.name)) is not None

    return BookkeepingScorer(store, env={})


# ---------------------------------------------------------------------- one size
def measure(kind: str, lay: Layout, shards_per_class: int, root: Path, events: int,
            baseline_events: int, check: bool = False) -> dict[str, Any]:
    """Every timing of one (backend, layout, size); with `check`, also whether the
    incremental state equals a full recomputation (the unit test's correctness check)."""
    from synscale_analyzer.orchestrator import Orchestrator
    from synscale_scorer.worker import ShardReadyHandler
    from synscale_trainer.plan import plan_training_set

    st = design(lay, shards_per_class, events)
    held = {*st.analyzer_events, st.final}
    backend = Backend(kind, root)
    store = backend.store
    out: dict[str, Any] = {"backend": kind, "layout": lay.name, "cells": lay.cells, "classes": lay.classes,
                           "runs": lay.runs, "shards": st.n_shards, "images": st.n_shards * SHARD}
    try:
        t_fill, _ = _timed(lambda: (backend.touch(shard_keys(st, held)),
                                    backend.touch(partial_keys(st, held))))
        store.put(layout.spec_key(st.sid), st.spec.to_yaml().encode(), content_type="application/yaml")
        out["populate_s"] = round(t_fill, 3)

        # -- rebuild of a restarted analyzer (then what its first _advance launches: untimed)
        ctx = _context(store)
        orch = Orchestrator(ctx)
        out["rebuild_s"], state = _timed(lambda: orch.study(st.sid))
        state.launched |= {r.run_id for r in state.ready_runs()}
        baseline = old.OldAnalyzerState(state)
        if kind == "fs" or st.n_shards <= 100_000:
            out["rebuild_old_listing_s"], _ = _timed(
                lambda: sum(1 for _ in old.old_listing(store, layout.images_prefix(st.sid))))

        # -- per event: the scorer's events (cell 0) first, then the analyzer's
        handler = ShardReadyHandler(ctx, _bookkeeping_scorer(store))
        scorer_times, analyzer_times, old_scorer, old_analyzer = [], [], [], []
        complete_flags = []
        for i, (cell, cid, start) in enumerate(st.analyzer_events):
            key = layout.shard_key(st.sid, cell.generator, cell.cfg, cell.strategy, cid, start, SHARD)
            backend.touch([key])
            value = ready_event(st, cell, cid, start, store.bucket)
            if (cell, cid, start) in set(st.scorer_events):
                pkey = layout.score_key(st.sid, cell.generator, cell.cfg, cell.strategy,
                                        f"partials/{layout.partial_name(cid, start, SHARD)}.npz")
                backend.touch([pkey])
                t, _ = _timed(lambda v=value, o=i: handler(Message("shards-ready", v, None, 0, o)))
                scorer_times.append(t)
                complete_flags.append(handler.service.progress._cells[(st.sid, cell)].complete)
                if len(old_scorer) < baseline_events:
                    old_scorer.append(_timed(
                        lambda c=cell: old.old_scorer_event(handler.service, st.sid, c))[0])
            t, _ = _timed(lambda v=value: orch.on_shard(v))
            analyzer_times.append(t)
            if len(old_analyzer) < baseline_events:
                old_analyzer.append(_timed(
                    lambda c=cell, k=cid, s=start: baseline.on_shard(c, k, s, SHARD))[0])
            else:
                baseline.coverage[(cell, cid)].add(start, SHARD)
        out["scorer_event_s"] = _summary(scorer_times[1:])  # the first one seeds the cell's view
        out["scorer_seed_s"] = round(scorer_times[0], 6)
        out["analyzer_event_s"] = _summary(analyzer_times)
        out["scorer_event_old_s"] = _summary(old_scorer)
        out["analyzer_event_old_s"] = _summary(old_analyzer)

        # -- completeness checks
        service = handler.service
        cell0 = st.cells[0]
        plan0 = service.plan(st.sid, cell0)
        out["analyzer_complete_s"], _ = _timed(lambda: (state.complete(), state.ready_runs()))
        out["analyzer_complete_old_s"], _ = _timed(baseline.complete)
        out["scorer_full_check_s"], before = _timed(
            lambda: service.complete(plan0, service.partial_names(plan0)))
        _, fcid, fstart = st.final
        fkey = layout.shard_key(st.sid, cell0.generator, cell0.cfg, cell0.strategy, fcid, fstart, SHARD)
        backend.touch([fkey, layout.score_key(st.sid, cell0.generator, cell0.cfg, cell0.strategy,
                                              f"partials/{layout.partial_name(fcid, fstart, SHARD)}.npz")])
        orch.on_shard(ready_event(st, cell0, fcid, fstart, store.bucket))
        from synscale_scorer.service import ShardInfo

        complete_flags.append(service.note_partial(plan0, ShardInfo(fkey, fcid, fstart, SHARD)))
        full = service.complete(plan0, service.partial_names(plan0))
        complete_flags.append(before)

        # -- planning one cell (cell 0 is whole now): smallest and largest N
        class_set = plan.study_classes(st.spec)
        sizes = st.spec.images_per_class

        def plan_n(n: int) -> Any:
            return plan_training_set(store, study_id=st.sid, cells=[cell0], classes=class_set,
                                     n_per_class=n, real_per_class=0)

        out["plan_64_s"], _ = _timed(lambda: plan_n(SHARD))  # a fixed small N: one shard per class
        out["plan_small_s"], small = _timed(lambda: plan_n(sizes[0]))
        out["plan_max_s"], big = _timed(lambda: plan_n(sizes[-1]))
        if kind == "fs" or st.n_shards <= 100_000:
            out["plan_old_listing_s"], _ = _timed(
                lambda: old.old_plan_listing(store, st.sid, cell0, st.class_ids))
        out["whole_study_s"] = whole_study(out, lay)
        out["load_avg"] = [round(x, 2) for x in os.getloadavg()]
        if check:
            out["agree"] = agreement(orch, state, st, service, plan0, full, complete_flags, small, big, sizes)
    finally:
        backend.close()
    return out


def agreement(orch: Any, state: Any, st: Study, service: Any, plan0: Any, full: bool,
              complete_flags: list[bool], small: Any, big: Any, sizes: list[int]) -> dict[str, bool]:
    """Incremental results against full recomputation over the same store."""
    fresh = orch._rebuild(st.spec)
    baseline = old.OldAnalyzerState(fresh)
    old_ready = [r.run_id for r in fresh.runs.values()
                 if r.run_id not in state.launched and r.run_id not in state.results
                 and (r.cell is None or baseline.cell_prefix(r.cell) >= r.n)]
    cov_equal = all(state.coverage[k].intervals == fresh.coverage[k].intervals for k in fresh.coverage)
    prefix_equal = all(old.layout.covered_prefix((a, b - a) for a, b in fresh.coverage[k].intervals)
                       == state.coverage[k].prefix for k in fresh.coverage)
    return {
        "coverage": cov_equal and prefix_equal,
        "images": state.images() == (baseline.images(), state.images()[1]),
        "ready_runs": [r.run_id for r in state.ready_runs()] == old_ready,
        "data_ready": all(state.data_ready(r) == (r.cell is None or baseline.cell_prefix(r.cell) >= r.n)
                          for r in state.runs.values()),
        "scorer_complete": complete_flags[-2] == full and full,
        "scorer_incomplete_before": not any(complete_flags[:-2]) and not complete_flags[-1],
        "plan_sizes": (small.n_images, big.n_images) == (sizes[0] * len(st.class_ids),
                                                         sizes[-1] * len(st.class_ids)),
    }


def _summary(xs: list[float]) -> dict[str, float] | None:
    if not xs:
        return None
    return {"median": round(statistics.median(xs), 6), "mean": round(statistics.fmean(xs), 6),
            "max": round(max(xs), 6), "n": len(xs)}


def whole_study(row: dict[str, Any], lay: Layout) -> float:
    """A study's bookkeeping from these parts: one rebuild, an analyzer and a scorer event
    per shard, a full check per cell, and each run's planning (~ the mean of smallest and
    largest N: planning cost is linear in N)."""
    n = row["shards"]
    per_event = row["analyzer_event_s"]["median"] + row["scorer_event_s"]["median"]
    per_cell = row["scorer_full_check_s"] + row["scorer_seed_s"]
    planning = lay.runs * (row["plan_small_s"] + row["plan_max_s"]) / 2
    return round(row["rebuild_s"] + n * per_event + lay.cells * per_cell + planning, 3)


# ---------------------------------------------------------------------- the fit
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306}


def loglog_fit(ns: list[float], ts: list[float]) -> dict[str, float] | None:
    """t = a·n^k by OLS on logs; k with a 95% t-interval (None below 3 points)."""
    if len(ns) < 3:
        return None
    x = [math.log(n) for n in ns]
    y = [math.log(max(t, 1e-9)) for t in ts]
    mx, my = statistics.fmean(x), statistics.fmean(y)
    sxx = sum((a - mx) ** 2 for a in x)
    k = sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True)) / sxx
    c = my - k * mx
    resid = [b - (c + k * a) for a, b in zip(x, y, strict=True)]
    dof = len(x) - 2
    se = math.sqrt(sum(r * r for r in resid) / dof / sxx)
    half = T975.get(dof, 1.96) * se
    return {"exponent": round(k, 3), "lo": round(k - half, 3), "hi": round(k + half, 3), "log_a": c,
            "points": len(x)}


def extrapolate(fit: dict[str, float], n: float) -> dict[str, float]:
    """The fitted law at n, with the exponent's interval carried to n from the data's centre."""
    t = math.exp(fit["log_a"] + fit["exponent"] * math.log(n))
    return {"shards": n, "seconds": round(t, 1), "hours": round(t / 3600, 3)}


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in sorted({(r["backend"], r["layout"]) for r in rows}):
        sel = sorted((r for r in rows if (r["backend"], r["layout"]) == key), key=lambda r: r["shards"])
        ns = [r["shards"] for r in sel]
        entry: dict[str, Any] = {"sizes": ns}
        for r in sel:
            r["study_without_planning_s"] = round(r["whole_study_s"] - r["runs"] * (
                r["plan_small_s"] + r["plan_max_s"]) / 2, 3)
        for metric in ("whole_study_s", "study_without_planning_s", "rebuild_s", "plan_max_s"):
            fit = loglog_fit(ns, [r[metric] for r in sel])
            if fit is not None:
                entry[metric] = {k: v for k, v in fit.items() if k != "log_a"}
                if metric == "whole_study_s":
                    entry["extrapolated_64M_images"] = extrapolate(fit, IMAGES_64M / SHARD)
        for ev in ("analyzer_event_s", "scorer_event_s"):
            entry[f"{ev}_growth"] = round(sel[-1][ev]["median"] / sel[0][ev]["median"], 2)
            ratios = [round(r[ev.replace("_s", "_old_s")]["median"] / r[ev]["median"], 1) for r in sel
                      if r.get(ev.replace("_s", "_old_s"))]
            entry[f"{ev}_old_over_new"] = ratios
        out[f"{key[0]}/{key[1]}"] = entry
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--backend", choices=("fs", "minio", "both"), default="fs")
    ap.add_argument("--layout", choices=("issue", "paper", "both"), default="issue")
    ap.add_argument("--sizes", default="10000,100000,1000000",
                    help="shard counts (rounded to whole shards per class)")
    ap.add_argument("--events", type=int, default=40)
    ap.add_argument("--baseline-events", type=int, default=5)
    ap.add_argument("--root", default=tempfile.gettempdir())
    ap.add_argument("--check", action="store_true", help="also compare incremental with full recomputation")
    args = ap.parse_args(argv)
    backends = ("fs", "minio") if args.backend == "both" else (args.backend,)
    layouts = [LAYOUTS[x] for x in (("issue", "paper") if args.layout == "both" else (args.layout,))]
    rows = []
    for kind in backends:
        for lay in layouts:
            for n in (int(float(s)) for s in args.sizes.split(",")):
                spc = max(1, round(n / (lay.cells * lay.classes)))
                root = Path(tempfile.mkdtemp(prefix="synscale-scale-", dir=args.root))
                try:
                    row = measure(kind, lay, spc, root, args.events, args.baseline_events, args.check)
                finally:
                    shutil.rmtree(root, ignore_errors=True)
                rows.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
    print(json.dumps({"rows": rows, "fits": summarise(rows), "cpus": os.cpu_count()}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
