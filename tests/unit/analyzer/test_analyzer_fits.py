"""Scaling-law fits: known slopes are recovered inside their intervals; extrapolation is honest."""

from __future__ import annotations

import math

import numpy as np
import pytest

from synscale_analyzer.analysis import correlate
from synscale_analyzer.fits import crossover, fit

SIZES = np.repeat([8, 16, 32, 64, 128, 256, 512, 1024], 3).astype(float)


def noisy_power_law(alpha: float, amp: float, sigma: float, seed: int, offset: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return offset + amp * SIZES ** (-alpha) * np.exp(rng.normal(0.0, sigma, SIZES.shape))


def test_power_law_recovers_known_slope_within_its_interval() -> None:
    f = fit(SIZES, noisy_power_law(0.4, 0.9, 0.05, seed=3), bootstrap=300)
    lo, hi = f.alpha_ci
    assert lo < 0.4 < hi
    assert hi - lo < 0.1  # informative, not a vacuous interval
    assert pytest.approx(0.9, rel=0.25) == f.A
    assert f.E == 0.0


def test_interval_coverage_over_repeated_noise_draws() -> None:
    covered = 0
    for seed in range(12):
        f = fit(SIZES, noisy_power_law(0.35, 0.8, 0.08, seed=100 + seed), bootstrap=150, seed=seed)
        covered += f.alpha_ci[0] <= 0.35 <= f.alpha_ci[1]
    assert covered >= 9  # nominal 95%; a badly calibrated interval misses far more often


def test_offset_law_recovers_floor_and_slope() -> None:
    y = noisy_power_law(0.5, 0.9, 0.02, seed=7, offset=0.1)
    f = fit(SIZES, y, "power_law_offset", bootstrap=150)
    assert f.E_ci[0] < 0.1 < f.E_ci[1]
    assert f.alpha_ci[0] < 0.5 < f.alpha_ci[1]
    plain = fit(SIZES, y, "power_law", bootstrap=0)
    assert plain.alpha < f.alpha  # ignoring the floor flattens the apparent slope


def test_robust_loss_resists_an_outlier() -> None:
    sizes = np.array([8, 16, 32, 64, 128, 256, 512.0])
    y = 0.9 * sizes**-0.4
    y[-2] *= 3.0  # one diverged run near the end, where it tilts a least-squares slope most
    robust = fit(sizes, y, loss="soft_l1", bootstrap=0)
    ols = fit(sizes, y, loss="linear", bootstrap=0)
    assert abs(robust.alpha - 0.4) < abs(ols.alpha - 0.4)
    assert robust.alpha == pytest.approx(0.4, abs=0.03)


def test_extrapolation_is_scored_on_the_held_out_largest_sizes() -> None:
    sizes = np.array([8, 16, 32, 64, 128, 256.0])
    exact = 0.9 * sizes**-0.4
    f = fit(sizes, exact, holdout_sizes=2, bootstrap=0)
    assert f.holdout is not None
    assert f.holdout.sizes == (128.0, 256.0)
    assert f.holdout.rel_error < 1e-6
    # A plateau at the largest sizes is invisible to the law fitted without them.
    plateau = exact.copy()
    plateau[-2:] = exact[-3]
    g = fit(sizes, plateau, holdout_sizes=2, bootstrap=0)
    assert g.holdout is not None
    assert g.holdout.observed == pytest.approx((exact[-3], exact[-3]))
    assert g.holdout.predicted == pytest.approx(tuple(exact[-2:]), rel=1e-6)
    assert g.holdout.rel_error > 0.2


def test_too_few_sizes_gives_nan_with_a_reason() -> None:
    f = fit([16, 16, 16], [0.3, 0.31, 0.29])
    assert not f.ok and math.isnan(f.alpha)
    assert "distinct sizes" in f.note
    g = fit([8, 16, 32], [0.5, 0.4, 0.3], holdout_sizes=1)
    assert g.ok and g.holdout is None  # two sizes left would fit exactly: no honest check


def test_zero_errors_are_binomial_counts_not_huge_slopes() -> None:
    """k = 0 of n is an observation, not a log of 0: no clipping, no α of 1.8 from two errors."""
    f = fit([8, 16, 32, 64], [0.2, 0.1, 0.0, 0.0], n_test=100)
    assert f.ok and f.alpha > 0 and all(np.isfinite(f.alpha_ci))
    assert f.alpha_ci[0] < f.alpha < f.alpha_ci[1]
    # The per-class case: 1, 0, 1, 0, 0 errors of 50 — the truth is a flat ≈ 0.01.
    g = fit([4, 8, 16, 32, 64], [0.02, 0.0, 0.02, 0.0, 0.0], n_test=50)
    assert g.alpha_ci[0] < 0.0 < g.alpha_ci[1]
    assert fit([4, 8, 16], [0.0, 0.0, 0.0], n_test=50).note.startswith("no errors")


def test_flat_chance_level_errors_leave_the_floor_not_identified() -> None:
    """A model at chance on an OOD set: errors flat near 0.9, no floor or slope to find.

    These points (from a demo run) used to give α at its bound 0 with a numeric interval;
    the offset law now says it cannot pin E, and the plain law's interval holds 0.
    """
    sizes, errs = [4, 8, 16, 32], [0.856, 0.902, 0.828, 0.89]
    f = fit(sizes, errs, "power_law_offset", n_test=500, holdout_sizes=1)
    assert not f.identified and not f.ok and "not identified" in f.note
    plain = fit(sizes, errs, n_test=500)
    assert plain.ok and plain.alpha_ci[0] < 0.0 < plain.alpha_ci[1]


def test_offset_law_without_a_floor_is_not_identified() -> None:
    """Pure power-law binomial data: the floor must be reported as not identified (no E ≈ 0, α = 1e-149)."""
    rng = np.random.default_rng(5)
    sizes = np.array([4, 8, 16, 32, 64, 128, 256.0])
    hits = 0
    for _ in range(40):
        k = rng.binomial(500, 0.8 * sizes**-0.3)
        f = fit(sizes, k / 500, "power_law_offset", n_test=500)
        hits += int(not f.identified)
        if not f.identified:
            assert math.isnan(f.alpha) and math.isnan(f.E) and "not identified" in f.note
    assert hits >= 36  # a 5% test: at most a few false floors


def test_offset_law_with_a_binomial_floor_is_identified() -> None:
    sizes = np.repeat([4, 8, 16, 32, 64, 128, 256, 512, 1024.0], 2)
    p = 0.15 + 0.8 * sizes**-0.6
    k = np.random.default_rng(2).binomial(2000, p)
    f = fit(sizes, k / 2000, "power_law_offset", n_test=2000)
    assert f.identified and f.E_ci[0] < 0.15 < f.E_ci[1]
    assert f.alpha_ci[0] < 0.6 < f.alpha_ci[1]


def test_bad_input_names_the_problem() -> None:
    with pytest.raises(ValueError, match="form"):
        fit([1, 2], [0.1, 0.2], form="exponential")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="equal length"):
        fit([1, 2, 3], [0.1, 0.2])


def test_crossover_of_two_laws() -> None:
    sizes = np.array([8, 16, 32, 64.0])
    real = fit(sizes, 0.5 * sizes**-0.5, bootstrap=0)
    synth = fit(sizes, 2.0 * sizes**-0.7, bootstrap=0)
    n = crossover(synth, real)
    assert n is not None
    assert 2.0 * n**-0.7 == pytest.approx(0.5 * n**-0.5, rel=1e-6)


def test_bands_contain_the_fit_and_widen_away_from_data() -> None:
    f = fit(SIZES, noisy_power_law(0.4, 0.9, 0.05, seed=1), bootstrap=100)
    grid = np.array([8.0, 64.0, 65536.0])
    lo, hi = f.band(grid)
    pred = f.predict(grid)
    assert np.all(lo <= pred * 1.001) and np.all(pred <= hi * 1.001)
    rel = (hi - lo) / pred
    assert rel[2] > rel[1]  # extrapolating 64x past the data is less certain


def test_correlations() -> None:
    x = [1, 2, 3, 4, 5]
    c = correlate(x, [1, 4, 9, 16, 25], "a", "b")
    assert c.spearman_rho == pytest.approx(1.0)
    assert 0.9 < c.pearson_r < 1.0
    assert math.isnan(correlate(x, [1, 1, 1, 1, 1], "a", "b").spearman_rho)
    assert correlate([1, 2], [2, 1], "a", "b").n == 2
