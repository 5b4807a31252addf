"""Protobuf results → the plain records the analysis works on, and the analysis input of a study."""

from __future__ import annotations

import math

from synscale.plan import PlannedRun, eval_sets
from synscale.v1 import scorer_pb2, trainer_pb2
from synscale_analyzer.model import (
    AnalysisInput,
    CellScoreRecord,
    ClassScoreRecord,
    EvalRecord,
    RunRecord,
)
from synscale_analyzer.state import StudyState


def run_record(planned: PlannedRun, result: trainer_pb2.RunResult) -> RunRecord:
    evals = {
        e.set_name: EvalRecord(e.set_name, float(e.top1), float(e.loss), dict(e.per_class), int(e.n),
                               {k: int(v) for k, v in e.per_class_n.items()}, bytes(e.correct))
        for e in result.evals
    }
    cell = planned.cell
    return RunRecord(
        run_id=planned.run_id, source=planned.source, recipe=planned.recipe.name, n=planned.n,
        seed=planned.seed, evals=evals, generator=cell.generator if cell else "",
        cfg=cell.cfg if cell else None, strategy=cell.strategy if cell else "",
        real_per_class=planned.real_per_class, status=result.status or "done", error=result.error,
        allocation=planned.allocation,
    )


def _f(x: float) -> float:
    return float(x) if math.isfinite(x) else math.nan


def score_record(result: scorer_pb2.ScoreResult) -> CellScoreRecord:
    classes = {
        c.class_id: ClassScoreRecord(c.class_id, int(c.n), _f(c.precision), _f(c.recall), _f(c.f1),
                                     _f(c.diversity_std), _f(c.lpips), _f(c.fid))
        for c in result.classes
    }
    return CellScoreRecord(
        generator=result.cell.generator, cfg=float(result.cell.cfg), strategy=result.cell.strategy,
        macro_f1=_f(result.macro_f1), diversity=_f(result.diversity), classes=classes,
        fid=_f(result.fid), kid_mean=_f(result.kid_mean), lpips=_f(result.lpips),
        scored=int(result.scored), skipped=int(result.skipped), **_cas(result),
    )


def _cas(result: scorer_pb2.ScoreResult) -> dict[str, float]:
    """CAS fields; a scorer that did not compute CAS leaves them 0 (proto3), and a real
    CAS always has an upper bound > 0, so 0 there means "not computed"."""
    if not result.cas_high > 0:
        return {}
    return {"cas": _f(result.cas), "cas_low": _f(result.cas_low), "cas_high": _f(result.cas_high)}


def analysis_input(state: StudyState) -> AnalysisInput:
    """Everything finished in `state`, in plan order (so the input, hence the report, is stable)."""
    spec = state.spec
    runs = tuple(run_record(p, state.results[rid]) for rid, p in state.runs.items() if rid in state.results)
    scores = tuple(score_record(state.scores[c]) for c in state.cells if c in state.scores)
    sets = eval_sets(spec)
    return AnalysisInput(
        study_id=state.study_id, study_name=spec.name, classes=state.classes, runs=runs, scores=scores,
        id_set=sets[0], ood_sets=tuple(sets[1:]), fits=tuple(spec.analysis.fits),
        metric=spec.analysis.metric, bootstrap=spec.analysis.bootstrap,
        holdout_sizes=spec.analysis.holdout_sizes, seed=spec.seed,
        meta={"generators": [g.name for g in spec.generators], "strategies": list(spec.strategies),
              "images_per_class": list(spec.images_per_class), "real_per_class": list(spec.real.per_class),
              "mix_real_per_class": spec.real.mix_real_per_class},
    )
