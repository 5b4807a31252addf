"""The follow-up study a plan recommends, written as a study file the user can run next.

It holds the recommended cell(s) — the best one, or every cell still plausibly best (P ≥ 5%)
when the pilot cannot decide — at the target size, the per-class allocation of the best
cell at that size (when it moves any image), and a *validation size* between the pilot and
the target (their geometric mean) whose predicted error is printed in the header: the
cheap first result of the follow-up tests the prediction before the target runs finish.
Everything else (classes, generator settings, recipe, evaluation) is the pilot's, so the
follow-up measures what the pilot predicted.
"""

from __future__ import annotations

import math
from typing import Any

import yaml

from synscale.study import StudySpec, parse_study
from synscale_analyzer.allocation import Allocation
from synscale_analyzer.planner import Candidate, Plan

PLAUSIBLE = 0.05


def validation_size(pilot_max: int, target: int) -> int | None:
    """A size strictly between the pilot and the target (their geometric mean), if there is one."""
    v = round(math.sqrt(pilot_max * target))
    return v if pilot_max < v < target else None


def recommended(plan: Plan) -> list[Candidate]:
    """The best cell, or every plausible one when the plan cannot decide."""
    if plan.best is None:
        return []
    if plan.decided:
        return [plan.best]
    return [c for c in plan.ranked if c.p_best >= PLAUSIBLE]


def followup_spec(pilot: StudySpec, plan: Plan, allocation: Allocation | None,
                  validation: dict[str, tuple[float, float, float]] | None = None,
                  ) -> tuple[dict[str, Any], str]:
    """(study mapping, header comment) of the follow-up; ValueError when the plan recommends nothing."""
    cells = recommended(plan)
    if not cells:
        raise ValueError(f"no follow-up: the plan recommends no cell ({plan.verdict})")
    target = cells[0].target_n
    v = validation_size(plan.pilot_max_n, target)
    gens = []
    for g in pilot.generators:
        cfgs = sorted({float(c.cfg) for c in cells if c.generator == g.name and c.cfg is not None})
        if cfgs:
            gens.append({**g.model_dump(mode="json"), "cfg": cfgs})
    strategies = [s for s in pilot.strategies if any(c.strategy == s for c in cells)]
    sizes: list[Any] = [n for n in (v, target) if n]
    moved = allocation is not None and any(n != allocation.uniform for n in allocation.counts.values())
    if moved:
        assert allocation is not None
        sizes.append(dict(allocation.counts))
    data = pilot.model_dump(mode="json")
    data.update(name=f"{pilot.name}-followup", generators=gens, strategies=strategies, images_per_class=sizes)
    if pilot.real.set != "none":
        data["real"] = {**data["real"], "per_class": [n for n in (v, target) if n]}
    parse_study(yaml.safe_dump(data, sort_keys=False), "follow-up")  # it must be a valid study
    lines = [f"Follow-up of study {pilot.study_id} written by `synscale plan` (docs/planner.md).",
             f"Verdict: {plan.verdict}.", f"Predicted {plan.eval_set} error ({plan.level:.0%} interval):"]
    for c in cells:
        lines.append(f"  {c.label} at N = {c.target_n}: {c.predicted:.4f} [{c.lo:.4f}, {c.hi:.4f}], "
                     f"P(best) = {c.p_best:.2f}")
        if v and validation and c.label in validation:
            mid, lo, hi = validation[c.label]
            lines.append(f"  {c.label} at the validation size N = {v}: {mid:.4f} [{lo:.4f}, {hi:.4f}]")
    if moved:
        assert allocation is not None
        lines.append(f"Allocation of {allocation.label} at {allocation.uniform}/class (the mapping entry): "
                     f"predicted gain over uniform {allocation.gain:+.4f} mean error "
                     f"[{allocation.gain_ci[0]:+.4f}, {allocation.gain_ci[1]:+.4f}], "
                     f"P(gain > 0) = {allocation.p_gain:.2f}")
    elif allocation is not None:
        lines.append(f"No per-class allocation: {allocation.note or 'the optimum is uniform'}")
    return data, "\n".join(f"# {line}" for line in lines) + "\n"


def followup_yaml(pilot: StudySpec, plan: Plan, allocation: Allocation | None,
                  validation: dict[str, tuple[float, float, float]] | None = None) -> str:
    data, header = followup_spec(pilot, plan, allocation, validation)
    return header + yaml.safe_dump(data, sort_keys=False)
