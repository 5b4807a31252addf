"""One codec per stored result: what a writer stores is what every reader parses.

- `runs/<id>/result.json` is a `synscale.v1.RunResult` in protobuf JSON (field names as in
  the proto, sorted keys): the trainer writes it, the trainer's GetRun and the analyzer's
  rebuild read it, test fakes write it — all through `run_result_to_json/_from_json`.
- `scores/<cell>/scores.json` is the scorer's document: the `synscale.v1.ScoreResult`
  fields with `null` where a metric was not computed (a FID that was switched off is not
  0), plus what only the report needs (confusion matrix, options, problems). The scorer
  writes it (synscale_scorer.report), the analyzer reads it back with
  `score_result_from_json`, and test fakes write it with `score_result_to_json`; a test
  checks the scorer's writer against this reader.

See docs/architecture.md §5 (store layout).
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any, TypeVar

from google.protobuf import json_format
from google.protobuf.message import Message

from synscale.v1 import common_pb2, scorer_pb2, trainer_pb2

log = logging.getLogger(__name__)
M = TypeVar("M", bound=Message)
SCORES_VERSION = 1
_CLASS_NUMBERS = ("precision", "recall", "f1", "diversity_std", "lpips", "fid")
_CELL_NUMBERS = ("macro_f1", "diversity", "fid", "kid_mean", "kid_std", "lpips", "cas", "cas_low",
                 "cas_high")


# ------------------------------------------------------------------ result.json
def _message_to_json(message: Message) -> bytes:
    """Stable bytes for a stored message: field names as in the proto, sorted keys."""
    return json_format.MessageToJson(message, preserving_proto_field_name=True, indent=1,
                                     sort_keys=True).encode()


def _message_from_json(data: bytes, message: M, what: str) -> M:
    try:
        return json_format.Parse(data.decode(), message, ignore_unknown_fields=True)
    except UnicodeDecodeError as exc:
        raise ValueError(f"{what} is not UTF-8: {exc}") from None
    except json_format.ParseError as exc:  # not a ValueError: callers catch one kind
        raise ValueError(f"{what} is not a {message.DESCRIPTOR.name}: {exc}") from None


def run_result_to_json(result: trainer_pb2.RunResult) -> bytes:
    return _message_to_json(result)


def run_result_from_json(data: bytes) -> trainer_pb2.RunResult:
    """Raises ValueError on a document that is not a RunResult."""
    return _message_from_json(data, trainer_pb2.RunResult(), "result.json")


# ------------------------------------------------------------------ job.json
def training_job_to_json(job: trainer_pb2.TrainingJob) -> bytes:
    """The job a TrainJob's pods train (runs/<id>/job.json): same bytes for the same job."""
    return _message_to_json(job)


def training_job_from_json(data: bytes) -> trainer_pb2.TrainingJob:
    """Raises ValueError on a document that is not a TrainingJob."""
    return _message_from_json(data, trainer_pb2.TrainingJob(), "job.json")


# ------------------------------------------------------------------ scores.json
def _num(x: object) -> float:
    return math.nan if x is None else float(x)  # type: ignore[arg-type]


def _json_num(x: float) -> float | None:
    return None if not math.isfinite(x) else float(x)


def score_result_from_json(data: bytes) -> scorer_pb2.ScoreResult:
    """A cell's scores.json as a ScoreResult (null -> NaN); ValueError when unreadable."""
    try:
        d = json.loads(data)
        classes = [scorer_pb2.ClassScore(class_id=str(c["class_id"]), n=int(c.get("n") or 0),
                                         **{k: _num(c.get(k)) for k in _CLASS_NUMBERS})
                   for c in d.get("classes", [])]
        cell = d["cell"]
        out = scorer_pb2.ScoreResult(
            study_id=str(d.get("study_id", "")),
            cell=common_pb2.CellId(generator=cell["generator"], cfg=float(cell["cfg"]),
                                   strategy=cell["strategy"]),
            classes=classes, scored=int(d.get("scored") or 0), skipped=int(d.get("skipped") or 0))
        for k in _CELL_NUMBERS:
            setattr(out, k, _num(d.get(k)))
        return out
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"unreadable scores.json: {type(exc).__name__}: {exc}") from None


def score_result_to_json(result: scorer_pb2.ScoreResult, **extra: Any) -> bytes:
    """The scores.json layout of a ScoreResult (NaN -> null), with report-only `extra` fields."""
    doc: dict[str, Any] = {
        "version": SCORES_VERSION, "study_id": result.study_id,
        "cell": {"generator": result.cell.generator, "cfg": float(result.cell.cfg),
                 "strategy": result.cell.strategy},
        "scored": int(result.scored), "skipped": int(result.skipped),
        **{k: _json_num(getattr(result, k)) for k in _CELL_NUMBERS},
        "classes": [{"class_id": c.class_id, "name": c.class_id, "n": int(c.n),
                     **{k: _json_num(getattr(c, k)) for k in _CLASS_NUMBERS}} for c in result.classes],
        **extra,
    }
    return (json.dumps(doc, sort_keys=True, indent=1, allow_nan=False) + "\n").encode()
