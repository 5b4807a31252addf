"""Coverage of the planner's predicted intervals on simulated pilots with a known law; prints JSON.

A pilot is one cell whose true error is err = A·N^−α (α = 0.3, err(4) = 0.6), observed as
binomial counts of n test images, one run per size at 4, 8, 16, 32, 64; the planner
predicts the error at 4× and 8× the largest size, and a nominal 95% interval should hold the
true error in 92–98% of pilots (docs/planner.md). The suite runs the same simulation at
300 pilots (tests/unit/analyzer/test_analyzer_planner.py, which also builds its pilots here).

    python bench/planner_coverage.py [--pilots 1000] [--seed 7]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from synscale_analyzer.model import AnalysisInput, EvalRecord, RunRecord
from synscale_analyzer.planner import plan_study

CLASSES = tuple((f"c{i}", f"class {i}") for i in range(4))
PILOT = (4, 8, 16, 32, 64)


def pilot_runs(laws: dict[str, tuple[float, float]], sizes: Sequence[int], n_test: int, seeds: int,
               rng: np.random.Generator, real: tuple[float, float] | None = None) -> tuple[RunRecord, ...]:
    """Runs of cells named by their CFG ("1", "2", ...) with laws (A, α), plus real data if given."""
    out = []
    cells = list(laws.items()) + ([("real", real)] if real else [])
    for label, (a, alpha) in cells:
        for n in sizes:
            for seed in range(seeds):
                k = rng.binomial(n_test, min(a * n ** -alpha, 1.0))
                ev = EvalRecord("test", 1 - k / n_test, 0.0, {c: 1 - k / n_test for c, _ in CLASSES}, n_test,
                                {c: n_test // len(CLASSES) for c, _ in CLASSES})
                if label == "real":
                    out.append(RunRecord(f"real-{n}-{seed}", "real", "cnn", n, seed, {"test": ev}))
                else:
                    out.append(RunRecord(f"{label}-{n}-{seed}", "synthetic", "cnn", n, seed, {"test": ev},
                                         generator="gen", cfg=float(label), strategy="classname"))
    return tuple(out)


def pilot_input(runs: tuple[RunRecord, ...], fits: tuple[str, ...] = ("power_law", "power_law_offset")
                ) -> AnalysisInput:
    return AnalysisInput("s", "s", CLASSES, runs, (), "test", (), fits=fits, holdout_sizes=0)


def coverage(target: int, n_test: int, pilots: int, seed: int = 7, draws: int = 2000) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    a, alpha = 0.6 * 4 ** 0.3, 0.3
    truth = a * target ** -alpha
    hits, widths = 0, []
    for _ in range(pilots):
        runs = pilot_runs({"1": (a, alpha)}, PILOT, n_test, 1, rng)
        plan, _ = plan_study(pilot_input(runs, ("power_law",)), per_class=target, draws=draws)
        c = plan.ranked[0]
        hits += c.lo <= truth <= c.hi
        widths.append((c.hi - c.lo) / truth)
    return {"target": target, "times_largest_pilot": target // PILOT[-1], "n_test": n_test, "pilots": pilots,
            "coverage": hits / pilots, "median_relative_width": float(np.median(widths))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pilots", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    rows = [coverage(t, n, args.pilots, args.seed) for t in (256, 512) for n in (500, 2000)]
    print(json.dumps({"rows": rows}, indent=1))


if __name__ == "__main__":
    main()
