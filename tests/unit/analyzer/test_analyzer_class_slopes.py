"""Per-class slopes mean something: binomial counts, an interval, or "not estimable" with a reason.

The fixture holds the demo's per-class ID accuracies from main 5f784ab (`make demo`: 9 synthetic
cells and real data, 5 sizes, one seed, 500 test images of which 37 are sandals) with the
class counts of that test set and the scorer's per-class F1 and diversity. On main these
points gave sandal α = 1.6–3.5 (a 0 error clipped to 1e-4 before the log).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from synscale_analyzer.class_slopes import ClassSlope, class_slope
from synscale_analyzer.correlation import pooled

FIXTURE = Path(__file__).parent / "data" / "demo_per_class.json"


@pytest.fixture(scope="module")
def demo() -> dict[str, Any]:
    return json.loads(FIXTURE.read_text())  # type: ignore[no-any-return]


def _slopes(demo: dict[str, Any], label: str) -> dict[str, ClassSlope]:
    s = demo["series"][label]
    out = {}
    for cid in demo["classes"]:
        scores = (s["scores"] or {}).get(cid, {})
        out[cid] = class_slope(cid, s["sizes"], [1.0 - a for a in s["accuracy"][cid]],
                               [demo["class_counts"][cid]] * len(s["sizes"]),
                               scores.get("f1", math.nan), scores.get("diversity", math.nan))
    return out


def _clipped_log_slope(sizes: list[int], errors: list[float]) -> float:
    """The former per-class slope: least squares on log(max(err, 1e-4))."""
    return float(-np.polyfit(np.log(sizes), np.log(np.maximum(errors, 1e-4)), 1)[0])


def test_the_fixture_holds_the_artefact_the_issue_describes(demo: dict[str, Any]) -> None:
    synthetic = [k for k in demo["series"] if k != "real"]
    assert len(synthetic) == 9 and demo["class_counts"]["sandal"] == 37
    old = [_clipped_log_slope(s["sizes"], [1 - a for a in s["accuracy"]["sandal"]])
           for s in (demo["series"][k] for k in synthetic)]
    assert max(abs(a) for a in old) > 1.5  # the clipped-log slope the report used to print


def test_no_demo_class_gets_an_absurd_slope(demo: dict[str, Any]) -> None:
    for label in demo["series"]:
        for c in _slopes(demo, label).values():
            if c.estimable:
                assert abs(c.alpha) <= 1.5, (label, c)
                assert c.alpha_ci[0] <= c.alpha <= c.alpha_ci[1]
            else:
                assert math.isnan(c.alpha) and c.reason and c.detail


def test_sandal_is_not_estimable_or_its_interval_contains_zero(demo: dict[str, Any]) -> None:
    for label in demo["series"]:
        c = _slopes(demo, label)["sandal"]
        assert (not c.estimable) or c.alpha_ci[0] <= 0.0 <= c.alpha_ci[1], (label, c)


def test_demo_correlation_is_over_classes(demo: dict[str, Any]) -> None:
    synthetic = sorted(k for k in demo["series"] if k != "real")
    grids = {a: np.full((len(synthetic), len(demo["classes"])), np.nan) for a in ("alpha", "f1")}
    for i, label in enumerate(synthetic):
        for j, cid in enumerate(demo["classes"]):
            c = _slopes(demo, label)[cid]
            if c.estimable:
                grids["alpha"][i, j], grids["f1"][i, j] = c.alpha, c.f1
    r = pooled(grids["alpha"], grids["f1"], "alpha", "f1")
    assert r.classes <= 10 and r.cells == 9
    assert r.pairs == int(np.isfinite(grids["alpha"]).sum())
    if math.isfinite(r.rho):
        assert 0.0 <= r.p <= 1.0 and r.ci[0] <= r.rho <= r.ci[1]


def test_a_class_with_one_error_now_and_then_is_not_estimable() -> None:
    """The issue's case: 1, 0, 1, 0, 0 errors of 50 (truth ≈ flat) used to give α = 1.80."""
    c = class_slope("x", [4, 8, 16, 32, 64], [0.02, 0.0, 0.02, 0.0, 0.0], [50] * 5, 0.9, 0.1)
    assert not c.estimable and c.reason == "zero_errors" and "3 of 5" in c.detail


def test_too_few_images_and_too_wide_intervals_are_not_estimable() -> None:
    few = class_slope("x", [4, 8, 16, 32, 64], [0.5, 0.4, 0.3, 0.3, 0.2], [10] * 5, 0.9, 0.1)
    assert few.reason == "few_images"
    rng = np.random.default_rng(0)
    errors = (rng.binomial(20, [0.3, 0.05, 0.3]) / 20).tolist()
    wide = class_slope("x", [4, 8, 16], errors, [20] * 3, 0.9, 0.1)
    assert wide.reason in ("wide", "zero_errors")


def test_a_class_that_scales_is_estimable_and_covered() -> None:
    """Seeded: 200 classes of 50 test images, α = 0.4, 5 sizes; the interval should cover ~95%."""
    rng = np.random.default_rng(9)
    sizes = np.array([4, 8, 16, 32, 64])
    p = 0.8 * sizes**-0.4
    hits = est = 0
    for _ in range(200):
        c = class_slope("x", sizes.tolist(), (rng.binomial(50, p) / 50).tolist(), [50] * 5, 0.9, 0.1)
        if c.estimable:
            est += 1
            hits += c.alpha_ci[0] <= 0.4 <= c.alpha_ci[1]
    assert est >= 150 and 0.9 <= hits / est <= 0.99


def test_one_error_at_every_size_is_not_a_precise_flat_slope(demo: dict[str, Any]) -> None:
    """Demo trouser, cfg=1|classname: 1 of 46 wrong at all 5 sizes. φ̂ = 0 gives a quasi interval
    of ±0.00; the counts alone cannot pin α to ±1, so the class is not estimable."""
    s = demo["series"]["embedded|cfg=1|classname"]
    errors = [1.0 - a for a in s["accuracy"]["trouser"]]
    assert len({round(e * 46) for e in errors}) == 1
    c = class_slope("trouser", s["sizes"], errors, [46] * 5, math.nan, math.nan)
    assert c.reason == "wide"
