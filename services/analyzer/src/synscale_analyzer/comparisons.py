"""Comparisons as tests (docs/statistics.md): error at equal N, slope against slope, OOD against ID.

Each comparison gives a difference, its 95% interval and a p-value; p-values are
Holm-corrected within a family (all comparisons of one kind on one eval set), and a
difference whose corrected p is ≥ 0.05 is reported as "indistinguishable".

Errors at equal N are compared *paired* when both results carry per-image correctness: the
two models saw the same test images, so resampling images jointly (and seeds within each
arm) removes the shared image difficulty from the noise. Older results without it fall
back to an unpaired binomial test. Slopes are compared with Welch t-tests on the fits'
standard errors (unpaired; a shared test set correlates the two fits positively, which
makes the test conservative).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from synscale_analyzer.model import num as _num

LEVEL = 0.05
BOOTSTRAP = 2000
CHUNK = 250  # replicates per gather, at most GATHER / images: memory stays ~GATHER × seeds values
GATHER = 2_000_000


@dataclass(frozen=True)
class Comparison:
    """a − b with its interval and p-values; `family` names what Holm corrected over."""

    family: str
    a: str
    b: str
    eval_set: str
    estimate: float  # difference a − b
    ci: tuple[float, float]
    p: float
    method: str
    n: int | None = None  # images per class, for comparisons at equal N
    p_holm: float = math.nan

    @property
    def significant(self) -> bool:
        return math.isfinite(self.p_holm) and self.p_holm < LEVEL

    @property
    def verdict(self) -> str:
        if not self.significant:
            return "indistinguishable"
        return "a lower" if self.estimate < 0 else "a higher"

    def to_dict(self) -> dict[str, Any]:
        return {"family": self.family, "a": self.a, "b": self.b, "eval_set": self.eval_set, "n": self.n,
                "difference": _num(self.estimate), "ci": [_num(v) for v in self.ci], "p": _num(self.p),
                "p_holm": _num(self.p_holm), "verdict": self.verdict, "method": self.method}


def holm(p: Sequence[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values (monotone, capped at 1); NaN stays NaN."""
    vals = np.asarray(p, float)
    finite = np.flatnonzero(np.isfinite(vals))
    out = np.full(len(vals), math.nan)
    order = finite[np.argsort(vals[finite])]
    m = len(order)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * float(vals[i])))
        out[i] = running
    return out.tolist()


def corrected(comps: list[Comparison]) -> list[Comparison]:
    """The comparisons with Holm-adjusted p-values filled in, per family."""
    from dataclasses import replace

    out = list(comps)
    for fam in sorted({c.family for c in comps}):
        idx = [i for i, c in enumerate(comps) if c.family == fam]
        adj = holm([comps[i].p for i in idx])
        for i, q in zip(idx, adj, strict=True):
            out[i] = replace(comps[i], p_holm=q)
    return out


@dataclass(frozen=True)
class Arm:
    """The runs of one series at one size: per-seed error rates, test counts, per-image bits."""

    errors: tuple[float, ...]
    n: tuple[int, ...]
    bits: tuple[np.ndarray | None, ...]

    @property
    def mean(self) -> float:
        return float(np.mean(self.errors))

    def variance(self) -> float:
        """Variance of the arm's mean error: binomial, or the seed spread when that is larger."""
        p = self.mean
        binom = p * (1 - p) / float(np.sum(self.n))
        spread = float(np.var(self.errors, ddof=1)) / len(self.errors) if len(self.errors) > 1 else 0.0
        return max(binom, spread)


def _pairable(a: Arm, b: Arm) -> bool:
    bits = [x for x in (*a.bits, *b.bits)]
    return all(x is not None for x in bits) and len({len(x) for x in bits if x is not None}) == 1


def error_difference(
    a: Arm, b: Arm, rng: np.random.Generator, rounds: int = BOOTSTRAP,
) -> tuple[float, tuple[float, float], float, str]:
    """(a − b, 95% interval, two-sided p, method) for the mean error of two arms.

    The interval is the bootstrap percentile interval; the p-value is the normal test on the
    bootstrap standard error, which has no resolution floor of 1/rounds (with Holm over
    dozens of comparisons a counting p-value from a few hundred replicates could never
    reach 0.05).
    """
    est = a.mean - b.mean
    if _pairable(a, b):
        wrong_a = np.stack([~x for x in a.bits if x is not None]).astype(float)  # (seeds, images)
        wrong_b = np.stack([~x for x in b.bits if x is not None]).astype(float)
        images = wrong_a.shape[1]
        diffs = []
        step = max(1, min(CHUNK, GATHER // images))
        for start in range(0, rounds, step):
            chunk = min(step, rounds - start)
            # Resample test images jointly (the pairing), seeds within each arm (replicates).
            idx = rng.integers(0, images, size=(chunk, images))
            ea, eb = wrong_a[:, idx].mean(axis=2), wrong_b[:, idx].mean(axis=2)  # (seeds, B)
            sa = rng.integers(0, ea.shape[0], size=(chunk, ea.shape[0]))
            sb = rng.integers(0, eb.shape[0], size=(chunk, eb.shape[0]))
            cols = np.arange(chunk)[:, None]
            diffs.append(ea[sa, cols].mean(axis=1) - eb[sb, cols].mean(axis=1))
        d = np.concatenate(diffs)
        lo, hi = np.percentile(d, [2.5, 97.5])
        se = float(np.std(d, ddof=1))
        p = float(2 * stats.norm.sf(abs(est) / se)) if se > 0 else (1.0 if est == 0 else 0.0)
        return est, (float(lo), float(hi)), p, "paired bootstrap over test images and seeds"
    se = math.sqrt(a.variance() + b.variance())
    if se <= 0:
        return est, (est, est), (1.0 if est == 0 else 0.0), "unpaired binomial z-test"
    z = est / se
    return (est, (est - 1.959963984540054 * se, est + 1.959963984540054 * se),
            float(2 * stats.norm.sf(abs(z))), "unpaired binomial z-test (no per-image results)")


def slope_difference(alpha_a: float, se_a: float, dof_a: int, alpha_b: float, se_b: float,
                     dof_b: int) -> tuple[float, tuple[float, float], float]:
    """Welch t-test of α_a − α_b from two independent fits (Welch–Satterthwaite dof).

    Each standard error carries its fit's estimated dispersion on dof_a (dof_b) degrees of
    freedom, as two sample variances do in Welch's test.
    """
    est = alpha_a - alpha_b
    se = math.sqrt(se_a**2 + se_b**2)
    if not math.isfinite(se) or se <= 0 or dof_a <= 0 or dof_b <= 0:
        return est, (math.nan, math.nan), math.nan
    dof = se**4 / (se_a**4 / dof_a + se_b**4 / dof_b)
    t = float(stats.t.ppf(0.975, dof))
    return est, (est - t * se, est + t * se), float(2 * stats.t.sf(abs(est) / se, dof))
