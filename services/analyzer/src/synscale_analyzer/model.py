"""Plain records the analysis works on, independent of protobuf and of the store.

The orchestrator converts RunResult / ScoreResult messages into these; tests build them by
hand. Keeping the fits and the report on plain data means they can be checked without a
bus, a store or any other service.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import numpy as np

Source = Literal["real", "synthetic", "mixed"]


def num(x: float | None) -> float | None:
    """JSON-safe float (NaN/inf → null), rounded so reports compare stably across runs."""
    return None if x is None or not math.isfinite(x) else float(f"{x:.10g}")


@dataclass(frozen=True)
class EvalRecord:
    set_name: str
    top1: float
    loss: float
    per_class: dict[str, float] = field(default_factory=dict)  # class id -> accuracy
    n: int = 0
    # Test images per class (empty in results written before the trainer sent it) and the
    # per-image top-1 correctness, packed bits in the set's order (empty likewise).
    per_class_n: dict[str, int] = field(default_factory=dict)
    correct: bytes = b""

    def class_count(self, class_id: str) -> int:
        """Test images of `class_id`: sent by the trainer, or n / classes for older results.

        The fallback assumes a balanced test set; it is only used when the count is missing.
        """
        if class_id in self.per_class_n:
            return int(self.per_class_n[class_id])
        return self.n // len(self.per_class) if self.per_class and self.n else 0

    def correct_bits(self) -> np.ndarray | None:
        """Per-image correctness as booleans, or None when the result does not carry it."""
        import numpy as np

        if not self.correct or not self.n:
            return None
        bits = np.unpackbits(np.frombuffer(self.correct, np.uint8))
        return bits[: self.n].astype(bool) if len(bits) >= self.n else None


@dataclass(frozen=True)
class RunRecord:
    """One finished training run, reduced to what a scaling series needs."""

    run_id: str
    source: Source
    recipe: str
    n: int  # the series' x-axis: synthetic images per class (real ones for real-only runs)
    seed: int
    evals: dict[str, EvalRecord]
    generator: str = ""
    cfg: float | None = None
    strategy: str = ""
    real_per_class: int = 0
    status: str = "done"
    error: str = ""
    allocation: str = ""  # synscale.plan.allocation_name of a per-class allocation; "" = uniform

    @property
    def cell(self) -> str:
        return cell_label(self.generator, self.cfg, self.strategy)


def cell_label(generator: str, cfg: float | None, strategy: str) -> str:
    if not generator:
        return ""
    return f"{generator}|cfg={float(cfg or 0):g}|{strategy}"


@dataclass(frozen=True)
class ClassScoreRecord:
    class_id: str
    n: int
    precision: float
    recall: float
    f1: float
    diversity_std: float
    lpips: float = float("nan")
    fid: float = float("nan")


@dataclass(frozen=True)
class CellScoreRecord:
    """Recognizability and diversity of one cell's images (the scorer's output)."""

    generator: str
    cfg: float
    strategy: str
    macro_f1: float
    diversity: float
    classes: dict[str, ClassScoreRecord] = field(default_factory=dict)
    fid: float = float("nan")
    kid_mean: float = float("nan")
    lpips: float = float("nan")
    scored: int = 0
    skipped: int = 0
    cas: float = float("nan")  # train-on-synthetic / test-on-real accuracy (scorer cas.py)
    cas_low: float = float("nan")  # its Wilson 95% interval
    cas_high: float = float("nan")

    @property
    def cell(self) -> str:
        return cell_label(self.generator, self.cfg, self.strategy)


@dataclass(frozen=True)
class AnalysisInput:
    """Everything a report is computed from; `options` mirrors the study's `analysis` block."""

    study_id: str
    study_name: str
    classes: tuple[tuple[str, str], ...]  # (id, name) in label order
    runs: tuple[RunRecord, ...]
    scores: tuple[CellScoreRecord, ...]
    id_set: str
    ood_sets: tuple[str, ...]
    fits: tuple[str, ...] = ("power_law", "power_law_offset")
    metric: Literal["error", "loss"] = "error"
    bootstrap: int = 200
    holdout_sizes: int = 1
    seed: int = 0
    meta: dict[str, Any] = field(default_factory=dict)
