"""Intervals cover: the seeded simulation of bench/fit_coverage.py, CI-sized (docs/statistics.md).

Binomial test errors (n = 100 and 500) on err = A·N^−α, one run per size, at 5 and 9 sizes,
α ∈ {0.05, 0.3}: nominal 95% intervals for α and for the error extrapolated to 4× the
largest N must hold the truth in 92–98% of 300 series per setting.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from synscale.testing.modules import load_module

BENCH = Path(__file__).resolve().parents[3] / "bench" / "fit_coverage.py"


@pytest.fixture(scope="module")
def table() -> dict[str, Any]:
    module = load_module("fit_coverage", BENCH)
    return module.coverage("new", series=300, seeds=1, seed=0)  # type: ignore[no-any-return]


def test_every_setting_is_simulated(table: dict[str, Any]) -> None:
    settings = {(r["sizes"], r["alpha"], r["n_test"]) for r in table["rows"]}
    assert settings == {(m, a, n) for m in (5, 9) for a in (0.05, 0.3) for n in (100, 500)}


@pytest.mark.parametrize("quantity", ["alpha_coverage", "extrapolated_coverage"])
def test_nominal_95_intervals_cover_92_to_98_percent(table: dict[str, Any], quantity: str) -> None:
    outside = [(r["sizes"], r["alpha"], r["n_test"], r[quantity]) for r in table["rows"]
               if not 0.92 <= r[quantity] <= 0.98]
    assert outside == []


def test_more_sizes_and_more_test_images_give_shorter_intervals(table: dict[str, Any]) -> None:
    """Coverage alone is met by a vacuous interval; these must shrink with information."""
    width = {(r["sizes"], r["alpha"], r["n_test"]): r["median_alpha_width"] for r in table["rows"]}
    for a in (0.05, 0.3):
        assert width[(9, a, 500)] < width[(9, a, 100)] < width[(5, a, 100)]
        assert width[(5, a, 500)] < width[(5, a, 100)]
