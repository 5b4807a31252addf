"""The planner on constructed pilots with known laws (docs/planner.md).

Each pilot is a set of series whose true error is err = A·N^−α, observed as binomial counts
of n test images per run; the planner sees the small sizes and is judged at the target.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from synscale.testing.modules import load_module
from synscale_analyzer.allocation import allocate, lagrange_allocation, round_to_total
from synscale_analyzer.class_slopes import class_slope
from synscale_analyzer.planner import plan_study

BENCH = Path(__file__).resolve().parents[3] / "bench" / "planner_coverage.py"


def _bench() -> Any:
    return load_module("planner_coverage", BENCH)


sim = _bench()
CLASSES, PILOT, _runs, _input = sim.CLASSES, sim.PILOT, sim.pilot_runs, sim.pilot_input


def _label(cfg: str) -> str:
    return f"gen|cfg={float(cfg):g}|classname"


def test_ranks_known_laws_in_the_order_of_their_errors_at_the_target() -> None:
    # At N = 16 cell 1 is best, but cell 4 scales fastest: at 512 the order is 4 < 2 < 1.
    laws = {"1": (0.5, 0.10), "2": (0.9, 0.25), "4": (1.5, 0.45)}
    truth = {_label(c): a * 512 ** -al for c, (a, al) in laws.items()}
    assert sorted(truth, key=truth.get)[0] == _label("4")  # type: ignore[arg-type]
    runs = _runs(laws, PILOT, 5000, 2, np.random.default_rng(1), real=(1.5, 0.5))
    plan, _ = plan_study(_input(runs), per_class=512, max_extrapolation=16)
    assert [c.label for c in plan.ranked] == sorted(truth, key=truth.get)  # type: ignore[arg-type]
    assert plan.decided and plan.best is not None and plan.best.label == _label("4")
    assert sum(c.p_best for c in plan.ranked) == pytest.approx(1.0)
    for c in plan.ranked:
        assert c.lo <= truth[c.label] <= c.hi, c
    assert plan.real is not None and plan.real.planned and plan.real not in plan.candidates


@pytest.mark.parametrize("target", [256, 512])
def test_predicted_intervals_cover_the_true_error_at_the_stated_rate(target: int) -> None:
    """300 seeded pilots (5 sizes 4…64, n = 500, one run per size, α = 0.3): 92–98% coverage."""
    row = sim.coverage(target, 500, pilots=300)
    assert 0.92 <= row["coverage"] <= 0.98
    assert row["median_relative_width"] > 0


def test_two_equal_cells_cannot_be_decided() -> None:
    runs = _runs({"1": (0.8, 0.2), "2": (0.8, 0.2)}, PILOT, 2000, 2, np.random.default_rng(3))
    plan, _ = plan_study(_input(runs), per_class=256)
    assert not plan.refusals and not plan.decided
    assert plan.verdict.startswith("cannot decide")
    assert all(0.1 < c.p_best < 0.9 for c in plan.ranked)


def test_a_pilot_with_two_sizes_is_refused_with_the_reason() -> None:
    runs = _runs({"1": (0.8, 0.2), "2": (0.9, 0.3)}, (8, 16), 2000, 3, np.random.default_rng(0))
    plan, _ = plan_study(_input(runs), per_class=64)
    assert plan.refusals == ["no synthetic cell can be extrapolated (see each cell's note)"]
    assert plan.best is None and not plan.decided
    assert all("2 pilot size(s); the planner needs at least 3" in c.note for c in plan.candidates)
    assert plan.verdict.startswith("refused")


def test_a_target_far_beyond_the_pilot_is_refused() -> None:
    runs = _runs({"1": (0.8, 0.2), "2": (0.9, 0.3)}, PILOT, 2000, 1, np.random.default_rng(0))
    plan, _ = plan_study(_input(runs), per_class=64 * 100, max_extrapolation=16)
    assert plan.refusals and all("100× the largest pilot size 64" in c.note for c in plan.candidates)


def test_a_series_at_chance_and_a_loose_slope_are_not_planned() -> None:
    rng = np.random.default_rng(0)
    chance = _runs({"1": (0.75, 0.0)}, PILOT, 400, 1, rng)  # 4 classes: chance is 0.75
    loose = _runs({"2": (0.5, 0.3)}, (4, 8, 16), 30, 1, rng)  # 30 test images: α to ± >1
    good = _runs({"4": (0.9, 0.3)}, PILOT, 2000, 1, rng)
    plan, _ = plan_study(_input(chance + loose + good), per_class=256)
    notes = {c.label: c.note for c in plan.candidates}
    assert "at chance" in notes[_label("1")]
    assert notes[_label("2")].startswith("slope not identified")
    assert plan.best is not None and plan.best.label == _label("4")


def test_a_gpu_hour_budget_gives_the_cheaper_generator_more_images() -> None:
    runs = _runs({"1": (0.8, 0.2)}, PILOT, 2000, 1, np.random.default_rng(0))
    plan, _ = plan_study(_input(runs), budget_gpu_hours=4.0, cost_per_image={"gen": 0.001})
    assert plan.ranked[0].target_n == 1000  # 4 h / 0.001 h = 4000 images over 4 classes
    with pytest.raises(ValueError, match="no cost per image for generator 'gen'"):
        plan_study(_input(runs), budget_gpu_hours=4.0, cost_per_image={})


# ------------------------------------------------------------------------ allocation
def test_two_classes_with_one_exponent_match_the_closed_form() -> None:
    a1, a2, alpha, total = 2.0, 0.5, 0.4, 300.0
    n = lagrange_allocation([a1, a2], [alpha, alpha], total)
    ratio = (a1 / a2) ** (1 / (1 + alpha))  # n1/n2 from α·A1·n1^−(1+α) = α·A2·n2^−(1+α)
    assert n.sum() == pytest.approx(total)
    assert n[0] / n[1] == pytest.approx(ratio, rel=1e-9)


def test_two_classes_with_different_exponents_reach_the_true_minimum() -> None:
    a, al, total = [1.0, 3.0], [0.2, 0.6], 500.0
    n = lagrange_allocation(a, al, total)
    grid = np.linspace(1, total - 1, 200_001)
    mean_err = a[0] * grid ** -al[0] + a[1] * (total - grid) ** -al[1]
    assert n[0] == pytest.approx(float(grid[np.argmin(mean_err)]), abs=0.01)
    marginal = [al[i] * a[i] * n[i] ** -(1 + al[i]) for i in range(2)]
    assert marginal[0] == pytest.approx(marginal[1], rel=1e-6)


def test_bounds_hold_and_a_flat_class_gets_the_least() -> None:
    n = lagrange_allocation([1.0, 1.0, 1.0], [0.5, 0.0, 0.5], 300.0, lo=25.0, hi=400.0)
    assert n[1] == pytest.approx(25.0) and n.sum() == pytest.approx(300.0)
    assert round_to_total(np.array([10.4, 10.4, 9.2]), 30).sum() == 30


def test_allocate_moves_images_to_the_class_that_scales_and_predicts_a_gain() -> None:
    rng = np.random.default_rng(0)
    sizes = [4, 8, 16, 32] * 2
    truth = {"c0": (0.9, 0.6), "c1": (0.3, 0.1), "c2": (0.5, 0.3), "c3": (0.05, 0.0)}
    slopes = []
    for cid, (a, al) in truth.items():
        errs = [rng.binomial(1000, min(a * n ** -al, 1)) / 1000 for n in sizes]
        slopes.append(class_slope(cid, sizes, errs, [1000] * len(sizes), math.nan, math.nan))
    alloc = allocate("cell", slopes, [c for c, _ in CLASSES], 64)
    assert sum(alloc.counts.values()) == 64 * 4
    assert alloc.counts["c0"] > 64 > alloc.counts["c1"]
    assert alloc.gain > 0 and alloc.gain_ci[0] <= alloc.gain <= alloc.gain_ci[1]
    true_gain = sum(a * 64 ** -al - a * alloc.counts[c] ** -al for c, (a, al) in truth.items()) / 4
    assert alloc.gain_ci[0] <= true_gain <= alloc.gain_ci[1]


def test_non_estimable_classes_keep_the_uniform_share() -> None:
    sizes = [4, 8, 16]
    slopes = [class_slope("c0", sizes, [0.5, 0.4, 0.3], [1000] * 3, math.nan, math.nan),
              class_slope("c1", sizes, [0.5, 0.4, 0.3], [5] * 3, math.nan, math.nan)]
    alloc = allocate("cell", slopes, ["c0", "c1", "c2"], 32)
    assert alloc.counts == {"c0": 32, "c1": 32, "c2": 32}
    assert alloc.not_estimable == {"c1": "too few test images per class", "c2": "no per-class fit"}
    assert "nothing to reallocate" in alloc.note
