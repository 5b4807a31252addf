"""One codec per stored result: the scorer's writer and the analyzer's reader agree."""

from __future__ import annotations

import math

from synscale import codecs
from synscale.cells import Cell
from synscale.v1 import common_pb2, scorer_pb2, trainer_pb2
from synscale_scorer.report import CellScores, ClassScores

NAN = float("nan")


def _cell_scores() -> CellScores:
    classes = [ClassScores("tshirt", "T-shirt", 8, 0.5, 0.25, 1 / 3, 0.61, NAN, 0, NAN, 0),
               ClassScores("bag", "bag", 8, 1.0, 0.75, 0.857, 0.52, 0.3, 4, 12.5, 8)]
    return CellScores("s-1", Cell("g", 7.5, "classname"), classes, macro_f1=0.6, diversity=0.565,
                      fid=NAN, fid_n=0, kid_mean=NAN, kid_std=NAN, lpips=0.3, scored=16, skipped=1,
                      confusion=[[4, 4], [2, 6]], reference="embedded")


def _same(a: scorer_pb2.ScoreResult, b: scorer_pb2.ScoreResult) -> bool:
    """Equal, NaN equal to NaN (a metric not computed on both sides)."""
    def norm(m: scorer_pb2.ScoreResult) -> bytes:
        c = scorer_pb2.ScoreResult()
        c.CopyFrom(m)
        for f in ("macro_f1", "diversity", "fid", "kid_mean", "kid_std", "lpips",
                  "cas", "cas_low", "cas_high"):
            if math.isnan(getattr(c, f)):
                setattr(c, f, -1.0)
        for cls in c.classes:
            for f in ("precision", "recall", "f1", "diversity_std", "lpips", "fid"):
                if math.isnan(getattr(cls, f)):
                    setattr(cls, f, -1.0)
        return c.SerializeToString(deterministic=True)
    return norm(a) == norm(b)


def test_the_scorers_scores_json_reads_back_as_its_event() -> None:
    scores = _cell_scores()
    parsed = codecs.score_result_from_json(scores.to_json())
    assert _same(parsed, scores.to_proto())
    assert math.isnan(parsed.fid) and math.isnan(parsed.classes[0].fid)  # null, not 0
    assert parsed.classes[1].fid == 12.5


def test_score_result_round_trip_through_the_codec() -> None:
    result = _cell_scores().to_proto()
    again = codecs.score_result_from_json(codecs.score_result_to_json(result, confusion=[[1]]))
    assert _same(again, result)


def test_run_result_round_trip() -> None:
    job = trainer_pb2.TrainingJob(study_id="s", run_id="r", classes=[common_pb2.ClassInfo(id="a", name="A")])
    result = trainer_pb2.RunResult(study_id="s", run_id="r", job=job, status="done", steps=3,
                                   evals=[trainer_pb2.EvalMetrics(set_name="x", top1=0.5, n=10)])
    assert codecs.run_result_from_json(codecs.run_result_to_json(result)) == result
