"""Comparisons are tests: calibrated under the null, paired where the results allow, Holm-corrected."""

from __future__ import annotations

import math

import numpy as np
import pytest

from synscale_analyzer import comparisons
from synscale_analyzer.comparisons import Arm, Comparison
from synscale_analyzer.fits import fit


def test_holm_adjusts_step_down_and_stays_monotone() -> None:
    assert comparisons.holm([0.01, 0.04, 0.03, math.nan]) == pytest.approx([0.03, 0.06, 0.06, math.nan],
                                                                             nan_ok=True)
    comps = [Comparison("f", "a", "b", "id", -0.1, (-0.2, 0.0), p, "t") for p in (0.01, 0.02, 0.2)]
    out = comparisons.corrected([*comps, Comparison("g", "a", "b", "id", 0.1, (0, 0.2), 0.02, "t")])
    assert [c.p_holm for c in out] == pytest.approx([0.03, 0.04, 0.2, 0.02])
    assert [c.verdict for c in out] == ["a lower", "a lower", "indistinguishable", "a higher"]


def _models(rng: np.random.Generator, images: int, p_a: float, p_b: float, shared: float) -> tuple[Arm, Arm]:
    """Two models on the same test images; `shared` of the images are hard for both (wrong alike)."""
    hard = rng.random(images) < shared
    wrong_a = np.where(hard, True, rng.random(images) < p_a)
    wrong_b = np.where(hard, True, rng.random(images) < p_b)
    return (Arm((float(wrong_a.mean()),), (images,), (~wrong_a,)),
            Arm((float(wrong_b.mean()),), (images,), (~wrong_b,)))


def test_paired_bootstrap_holds_its_level_under_the_null() -> None:
    """Seeded: 200 pairs of equally good models; a 5% test may reject about 10 of them."""
    rng = np.random.default_rng(3)
    rejected = sum(comparisons.error_difference(*_models(rng, 500, 0.2, 0.2, 0.3), rng)[2] < 0.05
                   for _ in range(200))
    assert rejected <= 18  # binomial(200, 0.05) exceeds 18 with probability < 1%


def test_pairing_over_test_images_narrows_the_interval() -> None:
    """Shared hard images are noise the paired test removes; the unpaired test cannot."""
    rng = np.random.default_rng(8)
    a, b = _models(rng, 500, 0.10, 0.16, 0.3)
    est, ci, p, method = comparisons.error_difference(a, b, rng)
    assert method.startswith("paired")
    unpaired = comparisons.error_difference(Arm(a.errors, a.n, (None,)), Arm(b.errors, b.n, (None,)), rng)
    assert unpaired[3].startswith("unpaired")
    assert est == pytest.approx(unpaired[0])
    assert ci[1] - ci[0] < 0.8 * (unpaired[1][1] - unpaired[1][0])
    assert ci[0] < est < ci[1] and p < unpaired[2]


def test_seeds_are_replicates_in_the_bootstrap() -> None:
    """Seed-to-seed spread widens the interval: two seeds far apart are not one precise value."""
    rng = np.random.default_rng(5)
    a1, b = _models(rng, 500, 0.2, 0.2, 0.0)
    a2, _ = _models(rng, 500, 0.35, 0.2, 0.0)
    one = comparisons.error_difference(a1, b, rng)[1]
    two = comparisons.error_difference(Arm(a1.errors + a2.errors, a1.n + a2.n, a1.bits + a2.bits), b, rng)[1]
    assert two[1] - two[0] > 1.5 * (one[1] - one[0])


def test_slope_test_holds_its_level_under_the_null() -> None:
    """Seeded: 300 pairs of series with the same α (binomial, 5 sizes, n = 500)."""
    rng = np.random.default_rng(6)
    sizes = np.array([4, 8, 16, 32, 64.0])
    p = 0.7 * sizes**-0.3
    rejected = 0
    for _ in range(300):
        fa = fit(sizes, rng.binomial(500, p) / 500, n_test=500)
        fb = fit(sizes, rng.binomial(500, p) / 500, n_test=500)
        _, _, pval = comparisons.slope_difference(fa.alpha, fa.alpha_se, fa.dof,
                                                  fb.alpha, fb.alpha_se, fb.dof)
        rejected += pval < 0.05
    assert 3 <= rejected <= 27  # about 15; far more would mean too-short intervals
