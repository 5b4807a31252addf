"""The analyzer's score record carries the scorer's CAS, and tells "not computed" from 0."""

from __future__ import annotations

import math

from synscale.v1 import common_pb2, scorer_pb2
from synscale_analyzer.records import score_record


def _result(**cas: float) -> scorer_pb2.ScoreResult:
    cell = common_pb2.CellId(generator="embedded", cfg=2.0, strategy="classname")
    return scorer_pb2.ScoreResult(study_id="s", cell=cell, macro_f1=0.9, diversity=0.5, **cas)


def test_cas_is_read_with_its_interval() -> None:
    rec = score_record(_result(cas=0.8, cas_low=0.79, cas_high=0.81))
    assert (rec.cas, rec.cas_low, rec.cas_high) == (0.8, 0.79, 0.81)


def test_a_scorer_without_cas_leaves_it_nan() -> None:
    rec = score_record(_result())
    assert math.isnan(rec.cas) and math.isnan(rec.cas_low) and math.isnan(rec.cas_high)
