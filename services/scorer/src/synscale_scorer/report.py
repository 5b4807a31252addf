"""A cell's scores and their three forms: scores.json, table.csv and the ScoreResult event.

Serialisation is byte-deterministic (sorted keys, fixed float formatting, NaN as null /
empty), so re-aggregating the same partials rewrites identical objects.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from synscale_scorer.plan import Cell

TABLE_COLUMNS = ("class", "n", "precision", "recall", "f1", "diversity_std", "lpips", "fid")
VERSION = 1


@dataclass
class ClassScores:
    class_id: str
    name: str
    n: int
    precision: float
    recall: float
    f1: float
    diversity_std: float
    lpips: float
    lpips_pairs: int
    fid: float
    fid_n: int


@dataclass
class CellScores:
    study_id: str
    cell: Cell
    classes: list[ClassScores]
    macro_f1: float
    diversity: float
    fid: float
    fid_n: int
    kid_mean: float
    kid_std: float
    lpips: float
    scored: int
    skipped: int
    problems: list[dict[str, str]] = field(default_factory=list)
    problems_total: int = 0
    confusion: list[list[int]] = field(default_factory=list)
    reference: str = ""
    extractor: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    shards: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    cas: float = math.nan  # train-on-synthetic / test-on-real accuracy (cas.py), NaN when off
    cas_low: float = math.nan  # its Wilson 95% interval on the real test images
    cas_high: float = math.nan
    cas_n: int = 0  # images CAS trained on

    # -- JSON --------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["cell"] = {"generator": self.cell.generator, "cfg": self.cell.cfg, "strategy": self.cell.strategy}
        d["version"] = VERSION
        return _nan_to_none(d)

    def to_json(self) -> bytes:
        return (json.dumps(self.to_dict(), sort_keys=True, indent=1, allow_nan=False) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes) -> CellScores:
        d = json.loads(data)
        d.pop("version", None)
        d["cell"] = Cell(d["cell"]["generator"], float(d["cell"]["cfg"]), d["cell"]["strategy"])
        d["classes"] = [ClassScores(**_none_to_nan(c)) for c in d["classes"]]
        return cls(**_none_to_nan(d))

    # -- CSV ---------------------------------------------------------------------------
    def to_csv(self) -> bytes:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(TABLE_COLUMNS)
        for c in self.classes:
            w.writerow([c.class_id, c.n, *(_fmt(v) for v in (c.precision, c.recall, c.f1,
                                                             c.diversity_std, c.lpips, c.fid))])
        return buf.getvalue().encode()

    # -- protobuf ----------------------------------------------------------------------
    def to_proto(self, bucket: str = "", json_key: str = "", table_key: str = "") -> Any:
        from synscale.v1 import scorer_pb2

        return scorer_pb2.ScoreResult(
            study_id=self.study_id, cell=self.cell.proto(),
            classes=[scorer_pb2.ClassScore(
                class_id=c.class_id, n=c.n, precision=c.precision, recall=c.recall, f1=c.f1,
                diversity_std=c.diversity_std, lpips=c.lpips, fid=c.fid) for c in self.classes],
            macro_f1=self.macro_f1, diversity=self.diversity, fid=self.fid,
            kid_mean=self.kid_mean, kid_std=self.kid_std, lpips=self.lpips,
            scored=self.scored, skipped=self.skipped, bucket=bucket, json_key=json_key,
            table_key=table_key, cas=self.cas, cas_low=self.cas_low, cas_high=self.cas_high,
        )


def _fmt(value: float) -> str:
    return "" if value is None or math.isnan(value) else f"{value:.6f}"


def _nan_to_none(obj: Any) -> Any:
    if isinstance(obj, float):
        return None if math.isnan(obj) else obj
    if isinstance(obj, dict):
        return {k: _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_nan_to_none(v) for v in obj]
    return obj


_FLOAT_FIELDS = {"precision", "recall", "f1", "diversity_std", "lpips", "fid", "macro_f1",
                 "diversity", "kid_mean", "kid_std", "cas", "cas_low", "cas_high"}


def _none_to_nan(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (math.nan if v is None and k in _FLOAT_FIELDS else v) for k, v in d.items()}


def rich_table(scores: CellScores) -> Any:
    """The per-class table for the terminal, with the cell's totals as the last row."""
    from rich.table import Table

    title = f"{scores.study_id} · {scores.cell} — {scores.scored} scored, {scores.skipped} skipped"
    caption = (f"cell FID on {scores.fid_n} images · KID {_fmt(scores.kid_mean)} ± {_fmt(scores.kid_std)}"
               f" · reference {scores.reference or '–'}")
    table = Table(title=title, caption=caption)
    for col in TABLE_COLUMNS:
        table.add_column(col, justify="left" if col == "class" else "right")
    for c in scores.classes:
        table.add_row(c.class_id, str(c.n), *(_short(v) for v in (c.precision, c.recall, c.f1,
                                                                c.diversity_std, c.lpips, c.fid)))
    table.add_section()
    table.add_row("cell", str(scores.scored), "", "", _short(scores.macro_f1),
                  _short(scores.diversity), _short(scores.lpips), _short(scores.fid), style="bold")
    return table


def _short(value: float) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.3f}"
