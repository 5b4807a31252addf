"""The state of one study: which images, scores and runs exist, and what may start next.

Pure bookkeeping, no I/O: the orchestrator feeds it events (or, after a restart, what it
finds in the store — the same calls), and asks it which runs are ready and whether the
study is complete. Everything here is idempotent: seeing a shard, a score or a result
twice changes nothing, which is what at-least-once delivery needs.

Every per-event update and query costs what the event touches, not the study's size
(docs/scaling.md, "Bookkeeping growth"): per cell and per run size N it counts the
classes whose prefix reached N, so a shard moves only the counters it crosses; runs
wait in an index by (cell, N) and move to the open set when their data exist; totals
(images covered, results in) are running sums.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field

from synscale.cells import Cell as CellKey
from synscale.layout import Coverage
from synscale.plan import PlannedRun, cells_of, plan_runs, study_classes
from synscale.study import StudySpec
from synscale.v1 import scorer_pb2, study_pb2, trainer_pb2

STAGES = ("generation", "scoring", "training", "analysis")


@dataclass
class StudyState:
    spec: StudySpec
    bucket: str
    classes: tuple[tuple[str, str], ...] = ()
    cells: list[CellKey] = field(default_factory=list)
    runs: dict[str, PlannedRun] = field(default_factory=dict)
    coverage: dict[tuple[CellKey, str], Coverage] = field(default_factory=dict)
    scores: dict[CellKey, scorer_pb2.ScoreResult] = field(default_factory=dict)
    results: dict[str, trainer_pb2.RunResult] = field(default_factory=dict)
    launched: set[str] = field(default_factory=set)
    report: study_pb2.ReportReady | None = None
    cancelled: bool = False
    error: str = ""
    rendering: bool = False  # the report is being written (outside the orchestrator's lock)
    # indexes (derived from the above; kept current by the update methods)
    _order: dict[str, int] = field(default_factory=dict, repr=False)  # run id -> plan position
    _sizes: dict[CellKey, list[int]] = field(default_factory=dict, repr=False)  # distinct N per cell
    # classes of the cell whose prefix reached N
    _reached: dict[tuple[CellKey, int], int] = field(default_factory=dict, repr=False)
    _waiting: dict[tuple[CellKey, int], list[str]] = field(default_factory=dict, repr=False)
    _ready: set[str] = field(default_factory=set, repr=False)  # data exist (only grows)
    _open: set[str] = field(default_factory=set, repr=False)  # data exist; maybe not launched yet
    _series: dict[tuple[object, ...], list[PlannedRun]] = field(default_factory=dict, repr=False)
    _images: int = 0

    def __post_init__(self) -> None:
        class_set = study_classes(self.spec)
        self.classes = tuple(zip(class_set.ids, class_set.names, strict=True))
        self.cells = cells_of(self.spec)
        self.runs = {r.run_id: r for r in plan_runs(self.spec, self.bucket, class_set)}
        cap = self.spec.max_images_per_class
        self.coverage = {(c, cid): Coverage(cap) for c in self.cells for cid, _ in self.classes}
        self._order = {rid: i for i, rid in enumerate(self.runs)}
        sizes: dict[CellKey, set[int]] = {}
        for r in self.runs.values():
            self._series.setdefault(_series_key(r), []).append(r)
            need = r.max_class_n  # an allocated run waits for its largest class's count
            if r.cell is None or need <= 0:
                self._mark_ready([r.run_id])
            else:
                sizes.setdefault(r.cell, set()).add(need)
                self._waiting.setdefault((r.cell, need), []).append(r.run_id)
        self._sizes = {c: sorted(ns) for c, ns in sizes.items()}
        self._reached = {(c, n): 0 for c, ns in self._sizes.items() for n in ns}

    @property
    def study_id(self) -> str:
        return self.spec.study_id

    # -- updates (all idempotent) ---------------------------------------------------
    def add_shard(self, cell: CellKey, class_id: str, start: int, count: int) -> bool:
        cov = self.coverage.get((cell, class_id))
        if cov is None:
            return False  # not part of this study (another spec's cell, or a stray class)
        before, prefix = cov.covered, cov.prefix
        cov.add(start, count)
        self._images += cov.covered - before
        if cov.prefix != prefix:
            self._prefix_grew(cell, prefix, cov.prefix)
        return cov.covered != before

    def _prefix_grew(self, cell: CellKey, old: int, new: int) -> None:
        """One class of `cell` now holds 0..new-1: count it for every N in (old, new]."""
        sizes = self._sizes.get(cell, [])
        for n in sizes[bisect_right(sizes, old):bisect_right(sizes, new)]:
            self._reached[(cell, n)] += 1
            if self._reached[(cell, n)] == len(self.classes):
                self._mark_ready(self._waiting.pop((cell, n), []))

    def _mark_ready(self, run_ids: Iterable[str]) -> None:
        for rid in run_ids:
            self._ready.add(rid)
            self._open.add(rid)

    def unlaunch(self, run_ids: Iterable[str]) -> None:
        """Forget that these runs were launched, so `ready_runs` offers them again.

        The one way to shrink `launched` (a resumed submission, the reconciler's
        re-launch): the open-run index must hear of it.
        """
        for rid in run_ids:
            self.launched.discard(rid)
            if rid in self._ready:
                self._open.add(rid)

    def add_score(self, result: scorer_pb2.ScoreResult) -> bool:
        cell = CellKey.of(result.cell)
        if cell not in self.cells:
            return False
        changed = self.scores.get(cell) != result
        self.scores[cell] = result
        return changed

    def add_result(self, result: trainer_pb2.RunResult) -> bool:
        if result.run_id not in self.runs:
            return False
        old = self.results.get(result.run_id)
        if old is not None and old.status == "done" and result.status != "done":
            return False  # a late failure report never overrides a finished run
        self.results[result.run_id] = result
        self.launched.add(result.run_id)
        return old != result

    # -- queries --------------------------------------------------------------------
    def cell_prefix(self, cell: CellKey) -> int:
        """Images per class available from index 0 in every class of `cell`."""
        return min((self.coverage[(cell, cid)].prefix for cid, _ in self.classes), default=0)

    def data_ready(self, run: PlannedRun) -> bool:
        return run.run_id in self._ready

    def ready_runs(self) -> list[PlannedRun]:
        """Runs whose data exist and that are neither launched nor finished, in plan order.

        Reads only the open set (runs that became ready and were not seen launched or
        finished since), pruning it as it goes: the cost is what is ready, not the plan.
        """
        if self.cancelled:
            return []
        self._open = {rid for rid in self._open if rid not in self.launched and rid not in self.results}
        return [self.runs[rid] for rid in sorted(self._open, key=self._order.__getitem__)]

    def series_of(self, run_id: str) -> list[PlannedRun]:
        """Every planned run of the same series as `run_id` (same source, cell, recipe, mix)."""
        return list(self._series[_series_key(self.runs[run_id])])

    @property
    def needs_scores(self) -> bool:
        s = self.spec.scoring
        return bool(self.cells) and (s.recognizability or s.diversity or s.fid or s.lpips)

    def images(self) -> tuple[int, int]:
        total = len(self.cells) * len(self.classes) * self.spec.max_images_per_class
        return self._images, total

    def progress(self) -> dict[str, tuple[int, int]]:
        done_runs = len(self.results)  # add_result admits planned runs only
        return {
            "generation": self.images(),
            "scoring": (len(self.scores), len(self.cells) if self.needs_scores else 0),
            "training": (done_runs, len(self.runs)),
            "analysis": (1 if self.report is not None else 0, 1),
        }

    def complete(self) -> bool:
        """Every image, every score and every run result is in: the report can be written."""
        done, total = self.images()
        scored = not self.needs_scores or len(self.scores) == len(self.cells)
        return (done == total and scored and len(self.results) == len(self.runs)
                and all(r in self.results for r in self.runs))

    @property
    def state(self) -> str:
        if self.cancelled:
            return "cancelled"
        if self.error:
            return "failed"
        if self.report is not None:
            return "done"
        return "running"

    def status(self) -> study_pb2.StudyStatus:
        out = study_pb2.StudyStatus(study_id=self.study_id, state=self.state, error=self.error)
        for stage, (done, total) in self.progress().items():
            out.stages.append(study_pb2.StageProgress(stage=stage, done=done, total=total))
        if self.report is not None:
            out.report.CopyFrom(self.report)
        return out


def _series_key(r: PlannedRun) -> tuple[object, ...]:
    return (r.source, r.cell, r.recipe.name, r.real_per_class if r.source == "mixed" else 0, r.allocation)
