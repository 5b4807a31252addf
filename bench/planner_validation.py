"""Validation of the planner on a finished grid: plan from the small sizes, compare with the truth at N.

Reads an embedded study (examples/planner-validation.yaml run with `synscale study run`),
plans from the runs with n ≤ N / 8 at the largest size N, and compares each cell's
prediction with the mean error measured at N (over seeds): Spearman rank correlation of
predicted vs measured errors, whether the predicted best cell is the measured best (or the
measured best's error lies in its interval), the mean absolute error of the predictions and
the share of measured errors inside their intervals. With `--allocation-results` (runs of
`synscale train --json` with and without the plan's `--class-n`) it adds the measured effect
of the per-class allocation against uniform at one size, paired by seed, beside the
planner's predicted gain. Prints JSON (docs/planner.md).

    python bench/planner_validation.py --study examples/planner-validation.yaml --data-dir DIR
        [--factor 8] [--target N] [--max-shift 4] [--allocation-results DIR]
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from synscale_analyzer.analysis import Series, build_series
from synscale_analyzer.plan_cli import embedded_input
from synscale_analyzer.planning import PlanOptions, plan_outcome


def _truth(series: list[Series], n: int) -> dict[str, tuple[float, float, int]]:
    """label → (mean error at n over seeds, its standard error, seeds)."""
    out = {}
    for s in series:
        vals = [p.value for p in s.points if p.n == n]
        if vals:
            se = float(np.std(vals, ddof=1) / math.sqrt(len(vals))) if len(vals) > 1 else math.nan
            out[s.key.label] = (float(np.mean(vals)), se, len(vals))
    return out


def validate(study: Path, data_dir: Path, factor: int = 8, target: int | None = None,
             **plan_kwargs: Any) -> dict[str, Any]:
    spec, inp = embedded_input(study, data_dir)
    pilot_max = max(spec.sizes) // factor
    n = target or max(spec.sizes)
    outcome = plan_outcome(inp, spec, PlanOptions(target_per_class=n, max_pilot_n=pilot_max, **plan_kwargs))
    full = [s for s in build_series(inp) if s.key.eval_set == inp.id_set and not s.key.allocation]
    truth = _truth(full, n)
    plan = outcome.plan
    rows = []
    for c in [*plan.ranked, *([plan.real] if plan.real and plan.real.planned else [])]:
        actual = truth.get(c.label)
        if actual is None:
            continue
        rows.append({"cell": c.label, "predicted": c.predicted, "lo": c.lo, "hi": c.hi, "p_best": c.p_best,
                     "measured": actual[0], "measured_se": actual[1], "seeds": actual[2],
                     "inside": c.lo <= actual[0] <= c.hi, "abs_error": abs(c.predicted - actual[0])})
    synth = [r for r in rows if r["cell"] != "real"]
    out: dict[str, Any] = {"study_id": inp.study_id, "target_n": n, "pilot_max_n": pilot_max,
                           "verdict": plan.verdict, "rows": rows}
    if len(synth) >= 2:
        rho = stats.spearmanr([r["predicted"] for r in synth], [r["measured"] for r in synth])
        measured_best = min(synth, key=lambda r: r["measured"])
        predicted_best = synth[0]  # ranked best first
        out.update({
            "spearman_rho": float(rho.statistic), "spearman_p": float(rho.pvalue),
            "spearman_rho_with_real": float(stats.spearmanr([r["predicted"] for r in rows],
                                                            [r["measured"] for r in rows]).statistic),
            "predicted_best": predicted_best["cell"], "measured_best": measured_best["cell"],
            "best_correct": predicted_best["cell"] == measured_best["cell"],
            "measured_best_in_predicted_best_interval":
                predicted_best["lo"] <= measured_best["measured"] <= predicted_best["hi"],
            "regret": predicted_best["measured"] - measured_best["measured"],
        })
    out["mae"] = float(np.mean([r["abs_error"] for r in rows])) if rows else math.nan
    out["mae_synthetic"] = float(np.mean([r["abs_error"] for r in synth])) if synth else math.nan
    out["coverage"] = float(np.mean([r["inside"] for r in rows])) if rows else math.nan
    if outcome.allocation is not None:
        out["allocation"] = outcome.allocation.to_dict()
    return out


def allocation_effect(results: Path, eval_set: str = "fashion-mnist-test") -> dict[str, Any]:
    """Allocated vs uniform runs at one size, paired by seed, from `synscale train --json` outputs.

    `results` holds uniform-s<seed>.json and alloc-s<seed>.json (RunResult JSON): the same
    cell, size, recipe and seed, trained on the pilot's own images, the allocated ones with
    `--class-n` from the plan (docs/planner.md, "Validation").
    """
    from synscale import codecs

    def errors(kind: str) -> dict[int, float]:
        out = {}
        for f in sorted(results.glob(f"{kind}-s*.json")):
            r = codecs.run_result_from_json(f.read_bytes())
            ev = next(e for e in r.evals if e.set_name == eval_set)
            out[int(r.job.seed)] = 1.0 - float(ev.top1)
        return out

    u, a = errors("uniform"), errors("alloc")
    seeds = sorted(set(u) & set(a))
    diffs = np.array([u[k] - a[k] for k in seeds])  # > 0: the allocation has the lower error
    t = float(stats.t.ppf(0.975, len(seeds) - 1)) if len(seeds) > 1 else math.nan
    se = float(diffs.std(ddof=1) / math.sqrt(len(seeds))) if len(seeds) > 1 else math.nan
    return {"seeds": seeds, "uniform_error": {str(k): u[k] for k in seeds},
            "allocated_error": {str(k): a[k] for k in seeds},
            "mean_uniform_error": float(np.mean([u[k] for k in seeds])) if seeds else math.nan,
            "mean_allocated_error": float(np.mean([a[k] for k in seeds])) if seeds else math.nan,
            "measured_gain": float(diffs.mean()) if seeds else math.nan,
            "measured_gain_ci": ([float(diffs.mean() - t * se), float(diffs.mean() + t * se)]
                                 if seeds else None)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--study", type=Path, default=Path("examples/planner-validation.yaml"))
    ap.add_argument("--data-dir", type=Path, default=Path("runs/planner-validation"))
    ap.add_argument("--factor", type=int, default=8, help="plan from sizes <= N / factor")
    ap.add_argument("--max-shift", type=float, default=4.0)
    ap.add_argument("--target", type=int, default=None, help="plan at this size (default: the largest)")
    ap.add_argument("--allocation-results", type=Path, default=None,
                    help="folder of uniform-s<seed>.json / alloc-s<seed>.json from `synscale train --json`")
    args = ap.parse_args()
    if not (args.data_dir / "store").is_dir():  # `make bench` runs every bench: say what to run first
        print(json.dumps({"skipped": f"no finished grid under {args.data_dir}; run: synscale study run "
                                     f"{args.study} --data-dir {args.data_dir}"}))
        return
    doc = validate(args.study, args.data_dir, args.factor, target=args.target, max_shift=args.max_shift)
    if args.allocation_results:
        doc["allocation_run"] = allocation_effect(args.allocation_results)
    print(json.dumps(doc, indent=1, default=float))


if __name__ == "__main__":
    main()
