"""`synscale plan` end to end: a finished pilot → the plan, the allocation and the follow-up study.

One function (`plan_outcome`) serves the CLI, the gRPC method and the report's planner
section, so the three can never disagree (docs/planner.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from synscale.errors import InvalidInput
from synscale.study import StudySpec
from synscale.v1 import study_pb2
from synscale_analyzer.allocation import DEFAULT_MAX_SHIFT, Allocation, allocate
from synscale_analyzer.analysis import Series, per_class_slopes
from synscale_analyzer.followup import followup_yaml, recommended, validation_size
from synscale_analyzer.model import AnalysisInput
from synscale_analyzer.planner import (
    DEFAULT_CONFIDENCE,
    DEFAULT_MAX_EXTRAPOLATION,
    Plan,
    pilot_input,
    plan_study,
    series_draws,
)


@dataclass(frozen=True)
class PlanOptions:
    """What the user asks: a target (one of three forms), the pilot's extent and the thresholds."""

    target_per_class: int | None = None
    budget_images: int | None = None
    budget_gpu_hours: float | None = None
    cost_per_image: Mapping[str, float] = field(default_factory=dict)
    max_pilot_n: int | None = None
    confidence: float = DEFAULT_CONFIDENCE
    max_extrapolation: float = DEFAULT_MAX_EXTRAPOLATION
    max_shift: float = DEFAULT_MAX_SHIFT


@dataclass
class PlanOutcome:
    plan: Plan
    allocation: Allocation | None
    followup: str  # the follow-up study (YAML), "" when the plan recommends nothing
    validation: dict[str, tuple[float, float, float]]  # label → (median, lo, hi) at the validation size
    validation_n: int | None

    def to_dict(self) -> dict[str, Any]:
        return {**self.plan.to_dict(), "allocation": self.allocation.to_dict() if self.allocation else None,
                "validation_n": self.validation_n,
                "validation": {k: list(v) for k, v in self.validation.items()},
                "followup_yaml": self.followup}


def plan_outcome(inp: AnalysisInput, spec: StudySpec | None, opts: PlanOptions) -> PlanOutcome:
    """Plan, allocate the best cell and write the follow-up; InvalidInput for a bad target."""
    try:
        return _outcome(inp, spec, opts)
    except ValueError as exc:
        raise InvalidInput("plan", str(exc)) from None


def _outcome(inp: AnalysisInput, spec: StudySpec | None, opts: PlanOptions) -> PlanOutcome:
    plan, series = plan_study(
        inp, max_pilot_n=opts.max_pilot_n, per_class=opts.target_per_class, budget_images=opts.budget_images,
        budget_gpu_hours=opts.budget_gpu_hours, cost_per_image=opts.cost_per_image,
        confidence=opts.confidence,
        max_extrapolation=opts.max_extrapolation)
    best = plan.best
    by_label = {s.key.label: s for s in series}
    allocation = None
    validation: dict[str, tuple[float, float, float]] = {}
    v = validation_size(plan.pilot_max_n, best.target_n) if best else None
    if best is not None:
        pilot = pilot_input(inp, opts.max_pilot_n)
        slopes = per_class_slopes(pilot, by_label[best.label])
        allocation = allocate(best.label, slopes, [cid for cid, _ in inp.classes], best.target_n,
                              max_shift=opts.max_shift, seed=inp.seed)
        if v:
            validation = _at(series, recommended(plan), v, plan.level, inp.seed)
    text = ""
    if best is not None and spec is not None:
        text = followup_yaml(spec, plan, allocation, validation)
    return PlanOutcome(plan, allocation, text, validation, v)


def _at(series: list[Series], cells: list[Any], n: int, level: float, seed: int
        ) -> dict[str, tuple[float, float, float]]:
    rng = np.random.default_rng(seed + 1)
    tail = (1 - level) / 2
    out = {}
    for s in series:
        if any(c.label == s.key.label for c in cells):
            d, _ = series_draws(s, n, 4000, rng)
            lo, mid, hi = np.quantile(d, [tail, 0.5, 1 - tail])
            out[s.key.label] = (float(mid), float(lo), float(hi))
    return out


def _f(x: Any, digits: int = 4) -> str:
    return "–" if x is None or x != x else f"{x:.{digits}f}"


def _cell(text: str) -> str:
    """A table cell: a cell label's `|` (generator|cfg|strategy) must not split the column."""
    return text.replace("|", "\\|")


def markdown(outcome: PlanOutcome) -> str:
    """The plan as Markdown: the CLI prints it and the report embeds it."""
    p = outcome.plan
    lines = [f"**Verdict:** {p.verdict}", "",
             f"Pilot: sizes up to {p.pilot_max_n} per class on {p.eval_set}; {p.level:.0%} intervals; "
             f"{p.draws} draws per cell.", "",
             "| rank | cell | N | predicted error | interval | P(best) | α (pilot) | forms | note |",
             "|---:|---|---:|---:|---|---:|---:|---|---|"]
    for i, c in enumerate(p.candidates, 1):
        rank = str(i) if c.planned else "–"
        lines.append(f"| {rank} | {_cell(c.label)} | {c.target_n} | {_f(c.predicted)} | "
                     f"[{_f(c.lo)}, {_f(c.hi)}] | {_f(c.p_best, 2)} | {_f(c.alpha, 3)} | "
                     f"{', '.join(c.forms) or '–'} | {_cell(c.note)} |")
    if p.real is not None:
        r = p.real
        lines.append(f"| ref. | real | {r.target_n} | {_f(r.predicted)} | [{_f(r.lo)}, {_f(r.hi)}] | – | "
                     f"{_f(r.alpha, 3)} | {', '.join(r.forms) or '–'} | {_cell(r.note)} |")
    a = outcome.allocation
    if a is not None:
        lines += ["", f"**Per-class allocation** of {a.label} at {a.uniform} images per class "
                      f"({len(a.estimable)} estimable classes; the others keep {a.uniform}): "
                  + (a.note or f"predicted gain over uniform {a.gain:+.4f} mean error, "
                               f"{p.level:.0%} interval [{a.gain_ci[0]:+.4f}, {a.gain_ci[1]:+.4f}], "
                               f"P(gain > 0) = {a.p_gain:.2f}"),
                  "", "| class | images |" , "|---|---:|"]
        lines += [f"| {cid} | {n}{'' if cid in a.estimable else ' (uniform: ' + a.not_estimable[cid] + ')'} |"
                  for cid, n in a.counts.items()]
    return "\n".join(lines) + "\n"


def options_of(req: study_pb2.PlanRequest) -> PlanOptions:
    """A PlanRequest's options (proto3 zeros mean "unset" / the default)."""
    return PlanOptions(
        target_per_class=int(req.target_per_class) or None, budget_images=int(req.budget_images) or None,
        budget_gpu_hours=float(req.budget_gpu_hours) or None, cost_per_image=dict(req.cost_per_image),
        max_pilot_n=int(req.max_pilot_n) or None, confidence=float(req.confidence) or DEFAULT_CONFIDENCE,
        max_extrapolation=float(req.max_extrapolation) or DEFAULT_MAX_EXTRAPOLATION,
        max_shift=float(req.max_shift) or DEFAULT_MAX_SHIFT)


def reply_of(study_id: str, outcome: PlanOutcome) -> study_pb2.PlanReply:
    import json

    p, a = outcome.plan, outcome.allocation
    nan = float("nan")
    best = p.best
    return study_pb2.PlanReply(
        study_id=study_id, verdict=p.verdict, decided=p.decided, best=best.label if best else "",
        cells=[study_pb2.CellPrediction(label=c.label, target_n=c.target_n, predicted=c.predicted, lo=c.lo,
                                        hi=c.hi, p_best=c.p_best if c.planned else nan, note=c.note)
               for c in p.candidates],
        allocation=a.counts if a else {}, allocation_gain=a.gain if a else nan,
        allocation_gain_lo=a.gain_ci[0] if a else nan, allocation_gain_hi=a.gain_ci[1] if a else nan,
        followup_yaml=outcome.followup, plan_json=json.dumps(outcome.to_dict()), markdown=markdown(outcome))


REPORT_FACTOR = 4  # the report plans at 4× the largest size, where the slope table extrapolates


def planner_section(analysis: Any) -> tuple[dict[str, Any], str]:
    """The report's planner section: this study as a pilot for 4× its largest size.

    (report.json's "planner" and a Markdown section.) Never raises: a study the planner
    cannot plan gets a section that says why.
    """
    inp = analysis.input
    sizes = [p.n for s in analysis.series for p in s.points]
    if not sizes:
        return ({"verdict": "refused: no finished runs"},
                "\n## Planner\n\nNo finished runs to plan from.\n")
    target = REPORT_FACTOR * max(sizes)
    try:
        outcome = plan_outcome(inp, None, PlanOptions(target_per_class=target))
    except InvalidInput as exc:
        return {"verdict": f"refused: {exc}"}, f"\n## Planner\n\nNot planned: {exc}\n"
    intro = (f"\n## Planner\n\nThis study as a pilot for {target} images per class ({REPORT_FACTOR}× its "
             "largest size): each cell's predicted error with its interval and its probability of being "
             "best (docs/planner.md). `synscale plan` plans other targets and writes the follow-up "
             "study.\n\n")
    return outcome.to_dict(), intro + markdown(outcome)
