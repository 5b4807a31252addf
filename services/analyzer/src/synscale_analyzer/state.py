"""The state of one study: which images, scores and runs exist, and what may start next.

Pure bookkeeping, no I/O: the orchestrator feeds it events (or, after a restart, what it
finds in the store — the same calls), and asks it which runs are ready and whether the
study is complete. Everything here is idempotent: seeing a shard, a score or a result
twice changes nothing, which is what at-least-once delivery needs.
"""

from __future__ import annotations

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

    def __post_init__(self) -> None:
        class_set = study_classes(self.spec)
        self.classes = tuple(zip(class_set.ids, class_set.names, strict=True))
        self.cells = cells_of(self.spec)
        self.runs = {r.run_id: r for r in plan_runs(self.spec, self.bucket, class_set)}
        cap = self.spec.max_images_per_class
        self.coverage = {(c, cid): Coverage(cap) for c in self.cells for cid, _ in self.classes}

    @property
    def study_id(self) -> str:
        return self.spec.study_id

    # -- updates (all idempotent) ---------------------------------------------------
    def add_shard(self, cell: CellKey, class_id: str, start: int, count: int) -> bool:
        cov = self.coverage.get((cell, class_id))
        if cov is None:
            return False  # not part of this study (another spec's cell, or a stray class)
        before = cov.covered
        cov.add(start, count)
        return cov.covered != before

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
        return run.cell is None or self.cell_prefix(run.cell) >= run.max_class_n

    def ready_runs(self) -> list[PlannedRun]:
        """Runs whose data exist and that are neither launched nor finished, in plan order."""
        if self.cancelled:
            return []
        return [r for r in self.runs.values()
                if r.run_id not in self.launched and r.run_id not in self.results and self.data_ready(r)]

    def series_of(self, run_id: str) -> list[PlannedRun]:
        """Every planned run of the same series as `run_id` (same source, cell, recipe, mix)."""
        r = self.runs[run_id]
        key = (r.source, r.cell, r.recipe.name, r.real_per_class if r.source == "mixed" else 0, r.allocation)
        return [p for p in self.runs.values()
                if (p.source, p.cell, p.recipe.name, p.real_per_class if p.source == "mixed" else 0,
                    p.allocation) == key]

    @property
    def needs_scores(self) -> bool:
        s = self.spec.scoring
        return bool(self.cells) and (s.recognizability or s.diversity or s.fid or s.lpips)

    def images(self) -> tuple[int, int]:
        total = len(self.cells) * len(self.classes) * self.spec.max_images_per_class
        return sum(c.covered for c in self.coverage.values()), total

    def progress(self) -> dict[str, tuple[int, int]]:
        done_runs = sum(1 for r in self.runs if r in self.results)
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
        return done == total and scored and all(r in self.results for r in self.runs)

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
