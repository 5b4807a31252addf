"""The per-event bookkeeping of main before issue 15 (d63abbd), kept only as bench/scale.py's baseline.

Each function is the cost-defining part of the old code path, restated over today's
objects so both run on the same store in the same process: the ratio old/new is then a
measurement of this machine at this moment, not a comparison with a number from
another day. Nothing in the services imports this.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from synscale import ids, layout
from synscale.store.base import ObjectStore
from synscale.store.file import FileStore


class SortingCoverage:
    """The old `layout.Coverage`: re-sorts and re-merges every interval on every add."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.intervals: list[tuple[int, int]] = []

    def add(self, start: int, count: int) -> None:
        lo, hi = max(0, start), min(self.cap, start + count)
        if hi <= lo:
            return
        merged: list[tuple[int, int]] = []
        for a, b in sorted([*self.intervals, (lo, hi)]):
            if merged and a <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], b))
            else:
                merged.append((a, b))
        self.intervals = merged

    @property
    def covered(self) -> int:
        return sum(b - a for a, b in self.intervals)

    @property
    def prefix(self) -> int:
        return layout.covered_prefix((a, b - a) for a, b in self.intervals)


class OldAnalyzerState:
    """What the old StudyState did per shard-ready event: add, scan runs × classes, sum coverage."""

    def __init__(self, st: Any) -> None:
        self.st = st  # today's StudyState: its plan, classes, cells, launched/results sets
        cap = st.spec.max_images_per_class
        self.coverage = {k: SortingCoverage(cap) for k in st.coverage}
        for k, cov in st.coverage.items():
            for lo, hi in cov.intervals:
                self.coverage[k].add(lo, hi - lo)

    def cell_prefix(self, cell: Any) -> int:
        return min((self.coverage[(cell, cid)].prefix for cid, _ in self.st.classes), default=0)

    def images(self) -> int:
        return sum(c.covered for c in self.coverage.values())

    def complete(self) -> bool:
        """The old complete(): every class's covered images summed, every run looked up."""
        st = self.st
        total = len(st.cells) * len(st.classes) * st.spec.max_images_per_class
        return self.images() == total and all(r in st.results for r in st.runs)

    def on_shard(self, cell: Any, class_id: str, start: int, count: int) -> int:
        """add_shard, then `_event` (progress: images()), then `_advance` (ready_runs, complete)."""
        st = self.st
        cov = self.coverage[(cell, class_id)]
        before = cov.covered
        cov.add(start, count)
        if cov.covered != before:
            self.images()
            _ = sum(1 for r in st.runs if r in st.results)
        ready = [r for r in st.runs.values() if r.run_id not in st.launched and r.run_id not in st.results
                 and (r.cell is None or self.cell_prefix(r.cell) >= r.n)]
        self.complete()
        return len(ready)


def old_file_keys(store: FileStore, prefix: str) -> Iterator[str]:
    """The old `FileStore.list`'s walk: the whole bucket, filtered by prefix afterwards."""
    keys: list[str] = []
    for dirpath, dirnames, filenames in os.walk(store.base):
        rel_dir = Path(dirpath).relative_to(store.base).as_posix()
        if rel_dir == ".synscale-meta" or rel_dir.startswith(".synscale-meta/"):
            dirnames[:] = []
            continue
        for name in filenames:
            key = name if rel_dir == "." else f"{rel_dir}/{name}"
            if key.startswith(prefix) and not name.startswith(".tmp-"):
                keys.append(key)
    yield from sorted(keys)


def old_listing(store: ObjectStore, prefix: str) -> list[Any]:
    """The old `list(prefix)`: every key with its metadata (FileStore: whole-bucket walk + stat)."""
    if isinstance(store, FileStore):
        return [store.stat(k) for k in old_file_keys(store, prefix)]
    return list(store.list(prefix))


def old_scorer_event(service: Any, study_id: str, cell: Any) -> bool:
    """The old worker per event: parse study.yaml, plan the cell, list its partials, check them."""
    from synscale.study import parse_study
    from synscale_scorer.plan import plan_from_spec

    key = layout.spec_key(study_id)
    service.store.exists(key)
    spec = parse_study(service.store.get(key).decode(), key)
    plan = plan_from_spec(spec, study_id, cell, service.env)
    prefix = service.partial_key(plan, "x").rsplit("/", 1)[0] + "/"
    names = sorted(o.key[len(prefix):-4] for o in old_listing(service.store, prefix)
                   if o is not None and o.key.endswith(".npz"))
    return bool(service.complete(plan, names))


def old_plan_listing(store: ObjectStore, study_id: str, cell: Any, class_ids: tuple[str, ...]) -> int:
    """The old planner's listing: every shard of the cell, whatever N (then sorted per class)."""
    prefix = layout.cell_prefix(study_id, cell.generator, cell.cfg, cell.strategy)
    by_class: dict[str, list[tuple[int, int]]] = {}
    for info in old_listing(store, prefix):
        parsed = layout.parse_shard_in_cell(prefix, info.key)
        if parsed is not None:
            by_class.setdefault(parsed[0], []).append(parsed[1:])
    for cid in class_ids:
        sorted(by_class.get(ids.safe_component(cid), []), key=lambda t: (t[0], -t[1]))
    return sum(len(v) for v in by_class.values())
