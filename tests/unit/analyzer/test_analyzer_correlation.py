"""Per-class correlations at the class level: the pooled test holds its level where pairs do not."""

from __future__ import annotations

import math

import numpy as np
import pytest

from synscale_analyzer.correlation import correlate, pooled


def _cells(
    rng: np.random.Generator, cells: int, classes: int, effect: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Class traits shared by every cell (a class is easy or hard everywhere), plus cell noise.

    α depends on the covariate only through `effect`; with effect 0 both are class traits
    that happen to be unrelated — the case where pair-level p-values double-count.
    """
    trait_x = rng.normal(size=classes)
    trait_a = effect * trait_x + rng.normal(size=classes)
    x = trait_x[None] + 0.3 * rng.normal(size=(cells, classes))
    a = trait_a[None] + 0.3 * rng.normal(size=(cells, classes))
    return a, x


def test_pooled_test_holds_its_level_where_pairs_double_count() -> None:
    """Seeded: 150 studies of 9 cells × 10 classes without a true relation."""
    rng = np.random.default_rng(11)
    class_level = pair_level = 0
    for i in range(150):
        a, x = _cells(rng, 9, 10, 0.0)
        class_level += pooled(a, x, "alpha", "f1", seed=i, bootstrap=0).p < 0.05
        pair_level += correlate(a.ravel().tolist(), x.ravel().tolist(), "alpha", "f1").spearman_p < 0.05
    assert class_level <= 15  # about 7 of 150 at the 5% level
    assert pair_level > 3 * class_level  # the former pooled p over 90 pairs rejects far too often


def test_pooled_correlation_finds_a_class_level_relation_with_an_interval() -> None:
    rng = np.random.default_rng(2)
    a, x = _cells(rng, 9, 10, 2.0)
    a[0, 3] = a[4, 7] = math.nan  # not estimable: left out, the class stays in its other cells
    c = pooled(a, x, "alpha", "f1")
    assert c.classes == 10 and c.pairs == 88 and c.cells == 9
    assert c.p < 0.01 and c.ci[0] < c.rho < c.ci[1] and c.ci[0] > 0


def test_pooled_with_too_few_classes_is_undefined() -> None:
    c = pooled(np.array([[0.1, 0.2]]), np.array([[1.0, 2.0]]), "alpha", "f1")
    assert math.isnan(c.rho) and math.isnan(c.p) and c.classes == 2


def test_within_cell_correlation_has_a_fisher_interval() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=30)
    c = correlate(x, x + 0.5 * rng.normal(size=30), "a", "b")
    assert c.r_ci[0] < c.pearson_r < c.r_ci[1] and c.r_ci[0] > 0.5
    assert correlate([1, 2, 3], [1, 3, 2], "a", "b").r_ci == pytest.approx((math.nan, math.nan), nan_ok=True)
