"""Per-class scalability: α of one class's errors, or "not estimable" with the reason.

A class has few test images (~50 in the demo), so at a large N it often makes 0 or 1
errors. Fitted as binomial counts those points carry what they know — little — and the
interval says so; but an interval of ±3 on α is not a slope, and a class at 0 errors at
most sizes has no curve to read. Such classes are "not estimable" and stay out of the
correlations; the report counts them and gives the reasons (ADR 0009).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from synscale_analyzer.fits import Fit, fit

MIN_CLASS_IMAGES = 20  # test images of the class per run
MIN_SIZES = 3
MAX_HALF_WIDTH = 1.0  # an α known only to ±1 says nothing about scaling

REASONS = {
    "few_images": "too few test images per class",
    "few_sizes": "fewer than 3 sizes",
    "zero_errors": "0 errors at most sizes",
    "zero_at_max": "0 errors at the largest size",
    "wide": "interval too wide",
    "no_fit": "no fit",
}


@dataclass(frozen=True)
class ClassSlope:
    class_id: str
    alpha: float  # NaN when not estimable
    alpha_ci: tuple[float, float]
    f1: float
    diversity: float
    err_at_max: float
    test_images: int  # per run (the smallest over the class's points)
    reason: str = ""  # a key of REASONS when not estimable
    detail: str = ""
    # The class's fitted plain law (estimable classes only): the planner's allocation uses A too.
    law: Fit | None = field(default=None, repr=False, compare=False)

    @property
    def estimable(self) -> bool:
        return not self.reason


def class_slope(class_id: str, sizes: Sequence[int], errors: Sequence[float], counts: Sequence[int],
                f1: float, diversity: float) -> ClassSlope:
    ns = np.asarray(sizes, float)
    errs = np.asarray(errors, float)
    cnt = np.asarray(counts, float)
    max_n = float(ns.max())
    err_at_max = float(np.mean(errs[ns == max_n]))
    images = int(cnt.min()) if len(cnt) else 0
    nan2 = (math.nan, math.nan)

    def out(reason: str, detail: str, f: Fit | None = None) -> ClassSlope:
        if reason:
            return ClassSlope(class_id, math.nan, nan2, f1, diversity, err_at_max, images, reason, detail)
        assert f is not None
        return ClassSlope(class_id, f.alpha, f.alpha_ci, f1, diversity, err_at_max, images, law=f)

    if images < MIN_CLASS_IMAGES:
        return out("few_images", f"{images} test images per run (needs {MIN_CLASS_IMAGES})")
    distinct = sorted(set(ns.tolist()))
    if len(distinct) < MIN_SIZES:
        return out("few_sizes", f"{len(distinct)} sizes")
    errors_at = [float(np.sum(errs[ns == s] * cnt[ns == s])) for s in distinct]
    zeros = sum(1 for k in errors_at if k < 0.5)
    if zeros * 2 > len(distinct):
        return out("zero_errors", f"0 errors at {zeros} of {len(distinct)} sizes")
    if errors_at[-1] < 0.5:
        # 0 of n at the largest size says only p < ~3/n there (rule of three): a line through
        # it can be arbitrarily steep, so α is bounded below only and a symmetric interval
        # would misstate it.
        return out("zero_at_max", f"0 errors at the largest size (N = {distinct[-1]:g}): α is bounded "
                                  "below only")
    f = fit(ns.tolist(), errs.tolist(), "power_law", n_test=cnt.tolist())
    if not f.ok or not all(math.isfinite(v) for v in f.alpha_ci):
        return out("no_fit", f.note or "no interval")
    half = (f.alpha_ci[1] - f.alpha_ci[0]) / 2
    # Judged at least at binomial noise: a class whose counts happen to lie on a line (φ̂ ≈ 0,
    # e.g. 1 error at every size) has a short quasi interval but tells nothing about α.
    floor = f.t * math.sqrt(max(float(f.cov_unit[1, 1]), 0.0))
    if max(half, floor) > MAX_HALF_WIDTH:
        return out("wide", f"α = {f.alpha:.2f} ± {max(half, floor):.2f}")
    return out("", "", f)
