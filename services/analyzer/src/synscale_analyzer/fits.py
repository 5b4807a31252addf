"""Scaling-law fits err(N) = A·N^(−α) and err(N) = E + A·N^(−α) (docs/statistics.md).

Why a likelihood and not a log-log regression with a bootstrap: a point of a scaling series
is k errors of n test images, so its noise is binomial and known; a binomial GLM with log
link on log N (`glm.py`) fits exactly the plain law log p = log A − α log N, takes k = 0 as
an ordinary observation, and weighs each point by what it knows. Intervals are Wald
intervals with a quasi-likelihood dispersion and Student-t quantiles on m − p degrees of
freedom, which covered the truth in 94–96% of simulated series at 5 and 9 sizes, where the
former residual bootstrap covered 83–90% (docs/statistics.md, bench/fit_coverage.py).
Several seeds per size are replicates: each run is its own point and their spread enters
the dispersion. A metric without test counts (cross-entropy loss) is fitted as a line in
log space with the same t-intervals.

The offset law is fitted by profile likelihood over E; it is *identified* only when the
data pin E: the floor must improve on the plain law (quasi-F test, ADR 0008) and its
profile interval must stay clear of 0 and of the smallest observed error. Otherwise the
fit says "not identified" and carries no numbers, instead of α = 1e-149 at E ≈ 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from scipy import stats
from scipy.optimize import brentq, least_squares, minimize_scalar

from synscale_analyzer import glm
from synscale_analyzer.model import num as _num

FitForm = Literal["power_law", "power_law_offset"]
Loss = Literal["linear", "soft_l1", "huber"]
FORMS: tuple[FitForm, ...] = ("power_law", "power_law_offset")
N_PARAMS = {"power_law": 2, "power_law_offset": 3}
OFFSET_TEST_LEVEL = 0.05  # the floor must beat the plain law at this level to be reported
PROFILE_GRID = 48


@dataclass(frozen=True)
class Holdout:
    """Extrapolation check: fit without the largest sizes, predict them."""

    sizes: tuple[float, ...]
    observed: tuple[float, ...]  # mean observed error at each held-out size
    predicted: tuple[float, ...]
    rel_error: float  # mean |pred − obs| / obs over held-out sizes
    log_error: float  # mean |log pred − log obs|

    def to_dict(self) -> dict[str, Any]:
        return {
            "sizes": list(self.sizes), "observed": list(self.observed),
            "predicted": list(self.predicted), "rel_error": self.rel_error,
            "log_error": self.log_error,
        }


@dataclass(frozen=True)
class Fit:
    """One fitted law with t-intervals (95% unless `level` says otherwise).

    `cov` is the covariance of (log A, α[, E]); `identified` is False for an offset law the
    data cannot pin (its numbers are then NaN and `note` says why).
    """

    form: FitForm
    alpha: float
    A: float
    E: float
    alpha_ci: tuple[float, float]
    A_ci: tuple[float, float]
    E_ci: tuple[float, float]
    n_points: int
    sizes: tuple[float, ...]
    rmse_log: float
    level: float = 0.95
    holdout: Holdout | None = None
    note: str = ""
    family: glm.Family = "binomial"
    identified: bool = True
    dof: int = 0
    dispersion: float = math.nan
    offset_p: float = math.nan  # offset law: p-value of the floor against the plain law
    cov: np.ndarray = field(default_factory=lambda: np.full((2, 2), np.nan), repr=False, compare=False)
    # The covariance at dispersion 1 (binomial noise alone): what the counts could pin at best.
    cov_unit: np.ndarray = field(default_factory=lambda: np.full((2, 2), np.nan), repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return math.isfinite(self.alpha)

    @property
    def alpha_se(self) -> float:
        return float(math.sqrt(self.cov[1, 1])) if self.ok and np.isfinite(self.cov[1, 1]) else math.nan

    @property
    def t(self) -> float:
        return float(stats.t.ppf(0.5 + self.level / 2, self.dof)) if self.dof > 0 else math.nan

    def predict(self, n: np.ndarray | Sequence[float] | float) -> np.ndarray:
        beta = np.array([math.log(self.A), self.alpha]) if self.ok else np.array([math.nan, math.nan])
        return glm.mean(beta, np.log(np.asarray(n, float)), self.E if self.form != "power_law" else 0.0)

    def band(self, n: np.ndarray | Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
        """Pointwise t-interval of the fitted error at sizes `n` (delta method on log error)."""
        ns = np.asarray(n, float)
        pred = self.predict(ns)
        if not self.ok or not np.all(np.isfinite(self.cov)):
            return pred, pred
        logn = np.log(ns)
        power = np.exp(math.log(self.A) - self.alpha * logn)
        grad = [power / pred, -logn * power / pred]  # d log μ / d(log A, α)
        if self.form != "power_law":
            grad.append(1.0 / pred)
        g = np.stack(grad, axis=1)
        se = np.sqrt(np.einsum("ni,ij,nj->n", g, self.cov, g))
        return pred * np.exp(-self.t * se), pred * np.exp(self.t * se)

    def error_ci(self, n: float) -> tuple[float, float]:
        lo, hi = self.band([n])
        return float(lo[0]), float(hi[0])

    def to_dict(self) -> dict[str, Any]:
        return {
            "form": self.form, "alpha": _num(self.alpha), "A": _num(self.A), "E": _num(self.E),
            "alpha_ci": [_num(x) for x in self.alpha_ci], "A_ci": [_num(x) for x in self.A_ci],
            "E_ci": [_num(x) for x in self.E_ci], "n_points": self.n_points,
            "sizes": list(self.sizes), "rmse_log": _num(self.rmse_log), "level": self.level,
            "family": self.family, "identified": self.identified, "dof": self.dof,
            "dispersion": _num(self.dispersion), "offset_p": _num(self.offset_p),
            "alpha_se": _num(self.alpha_se),
            "holdout": self.holdout.to_dict() if self.holdout else None, "note": self.note,
        }


def _exp(x: float) -> float:
    """exp that saturates to inf (an interval end of a hopeless fit) instead of raising."""
    return math.exp(x) if x < 700 else math.inf


def _data(n: np.ndarray, y: np.ndarray, n_test: np.ndarray | None) -> glm.Data:
    if n_test is None:
        return glm.Data(np.log(n), y, np.ones_like(y), "lognormal")
    return glm.Data(np.log(n), y, n_test, "binomial")


def _robust_line(d: glm.Data, loss: Loss) -> np.ndarray:
    """A robust straight line in log space (continuous metrics only): (log A, α)."""
    x = glm.design(d.logn)
    logy = np.log(d.y)
    start = np.linalg.lstsq(x, logy, rcond=None)[0]

    def resid(p: np.ndarray) -> np.ndarray:
        return np.asarray(logy - x @ p)

    scale = 1e-3
    beta = start
    for _ in range(2):  # re-estimate the inlier scale from the robust residuals
        scale = max(float(np.median(np.abs(resid(beta)))) * 1.4826, 1e-3)
        beta = least_squares(resid, beta, loss=loss, f_scale=scale).x
    return np.asarray(beta)


def fit(
    sizes: Sequence[float], errors: Sequence[float], form: FitForm = "power_law", *,
    n_test: Sequence[float] | float | None = None, loss: Loss = "linear", bootstrap: int = 0,
    holdout_sizes: int = 0, level: float = 0.95, seed: int = 0,
) -> Fit:
    """Fit one series. `sizes` may repeat (several seeds per size); every point counts.

    With `n_test` (test images per point, or one number for all) the errors are binomial
    rates; without it the values are a positive continuous metric. `loss` (soft_l1/huber)
    makes the point estimate of a continuous plain law robust; its interval is then the
    t-interval around it, which the coverage simulation does not cover. `bootstrap` and
    `seed` are accepted for callers of the former bootstrap API and ignored.
    Returns a Fit whose `note` explains a NaN result.
    """
    del bootstrap, seed
    if form not in N_PARAMS:
        raise ValueError(f"form must be one of {', '.join(FORMS)}, got {form!r}")
    n = np.asarray(sizes, float)
    y = np.asarray(errors, float)
    if n.shape != y.shape or n.ndim != 1:
        raise ValueError(f"sizes and errors must be 1-D of equal length, got {n.shape} and {y.shape}")
    counts = None if n_test is None else np.broadcast_to(np.asarray(n_test, float), y.shape).copy()
    keep = np.isfinite(n) & np.isfinite(y) & (n > 0)
    if counts is None:
        keep &= y > 0  # a continuous metric of exactly 0 has no logarithm: say so, do not clip
    else:
        keep &= np.isfinite(counts) & (counts > 0)
        if np.any((y[keep] < 0) | (y[keep] > 1)):
            raise ValueError("with n_test, errors must be rates in [0, 1]")
    dropped = int((~keep).sum())
    n, y = n[keep], y[keep]
    counts = counts[keep] if counts is not None else None
    distinct = tuple(sorted(set(n.tolist())))
    p = N_PARAMS[form]
    family: glm.Family = "lognormal" if counts is None else "binomial"
    if len(distinct) < p:
        note = f"needs at least {p} distinct sizes, got {len(distinct)}"
        return _empty(form, len(n), distinct, level, note, family)
    d = _data(n, y, counts)
    if counts is not None and (float(np.sum(y * counts)) <= 0 or float(np.sum((1 - y) * counts)) <= 0):
        what = "no errors" if float(np.sum(y * counts)) <= 0 else "no correct predictions"
        return _empty(form, len(n), distinct, level, f"{what} at any size: the law has no slope to fit",
                      family)
    out = _plain(d, level, loss) if form == "power_law" else _offset(d, level)
    note = out.note
    if dropped and counts is None:
        note = (note + "; " if note else "") + f"{dropped} non-positive or non-finite value(s) left out"
    return Fit(
        **{**out.__dict__, "sizes": distinct, "note": note,
           "holdout": _holdout(form, n, y, counts, holdout_sizes, level) if holdout_sizes > 0 else None},
    )


def _empty(form: FitForm, npts: int, distinct: tuple[float, ...], level: float, note: str,
           family: glm.Family, identified: bool = True, offset_p: float = math.nan) -> Fit:
    nan2 = (math.nan, math.nan)
    return Fit(form, math.nan, math.nan, math.nan, nan2, nan2, nan2, npts, distinct, math.nan,
               level, None, note, family, identified, 0, math.nan, offset_p,
               np.full((N_PARAMS[form],) * 2, np.nan))


def _rmse_log(d: glm.Data, mu: np.ndarray) -> float:
    if d.family == "binomial":
        # Observed zeros have no log: measure the fit on the shrunk rates (k + ½)/(n + 1).
        obs = (d.y * d.n + 0.5) / (d.n + 1.0)
        mu = (mu * d.n + 0.5) / (d.n + 1.0)
    else:
        obs = d.y
    return float(np.sqrt(np.mean((np.log(obs) - np.log(mu)) ** 2)))


def _plain(d: glm.Data, level: float, loss: Loss = "linear") -> Fit:
    line = glm.fit_line(d)
    beta = line.beta
    if d.family == "lognormal" and loss != "linear":
        beta = _robust_line(d, loss)
        mu = glm.mean(beta, d.logn, 0.0)
        line = glm.LineFit(beta, 0.0, glm.deviance(d, mu), glm.pearson(d, mu), line.info, True)
    dof = d.m - 2
    phi = glm.dispersion(d, line.pearson, 2)
    note = "" if dof > 0 else "no interval: as many points as parameters"
    cov_unit = np.linalg.inv(line.info)
    cov = cov_unit * phi if dof > 0 else np.full((2, 2), np.nan)
    if not line.converged:
        note = (note + "; " if note else "") + "the fit did not converge"
    t = float(stats.t.ppf(0.5 + level / 2, dof)) if dof > 0 else math.nan
    se = np.sqrt(np.diag(cov))
    log_a, alpha = float(beta[0]), float(beta[1])
    return Fit(
        form="power_law", alpha=alpha, A=math.exp(log_a), E=0.0,
        alpha_ci=(alpha - t * se[1], alpha + t * se[1]),
        A_ci=(_exp(log_a - t * se[0]), _exp(log_a + t * se[0])) if dof > 0 else (math.nan, math.nan),
        E_ci=(0.0, 0.0), n_points=d.m, sizes=(), rmse_log=_rmse_log(d, glm.mean(beta, d.logn, 0.0)),
        level=level, note=note, family=d.family, dof=dof, dispersion=phi, cov=cov, cov_unit=cov_unit,
    )


@dataclass(frozen=True)
class Profile:
    """The offset law's profile deviance over the floor E."""

    grid: np.ndarray
    deviance: np.ndarray
    best: glm.LineFit
    plain: glm.LineFit
    e_max: float


def profile(d: glm.Data) -> Profile:
    """Profile deviance over E ∈ [0, smallest observed error): refit (log A, α) at each E."""
    by_size: dict[float, list[float]] = {}
    for ln, v in zip(d.logn.tolist(), d.y.tolist(), strict=True):
        by_size.setdefault(ln, []).append(v)
    e_max = min(float(np.mean(v)) for v in by_size.values())
    plain = glm.fit_line(d)
    # Even steps, plus steps that get dense near the smallest error (where the deviance turns fast).
    grid = np.unique(np.concatenate([np.linspace(0.0, e_max, PROFILE_GRID, endpoint=False),
                                     e_max * (1.0 - np.geomspace(1.0, 1e-4, PROFILE_GRID // 3))]))
    fits = [plain]
    for e in grid[1:]:
        fits.append(glm.fit_line(d, float(e), start=None))
    devs = np.array([f.deviance for f in fits])
    i = int(np.nanargmin(devs))
    best = fits[i]
    if 0 < i < len(grid) - 1:  # refine between the neighbours of the grid minimum
        res = minimize_scalar(lambda e: glm.fit_line(d, float(e), start=best.beta).deviance,
                              bounds=(float(grid[i - 1]), float(grid[i + 1])), method="bounded",
                              options={"xatol": 1e-6 * max(e_max, 1e-12)})
        cand = glm.fit_line(d, float(res.x), start=best.beta)
        if cand.deviance < best.deviance:
            best = cand
    return Profile(grid, devs, best, plain, e_max)


def _profile_interval(d: glm.Data, prof: Profile, crit: float) -> tuple[float, float]:
    """{E : D(E) − D(Ê) ≤ crit}, its ends found by root search between grid points.

    An end that reaches the grid's edge is returned as that edge (0 or the largest grid E),
    which the identifiability check reads as "the data do not bound E there".
    """
    best = prof.best
    excess = prof.deviance - best.deviance - crit
    inside = np.flatnonzero(excess <= 0)
    if inside.size == 0:
        return best.E, best.E

    def g(e: float) -> float:
        return glm.fit_line(d, e, start=best.beta).deviance - best.deviance - crit

    ends = []
    for idx, step in ((int(inside.min()), -1), (int(inside.max()), 1)):
        nxt = idx + step
        if nxt < 0 or nxt >= len(prof.grid):
            ends.append(float(prof.grid[idx]))
            continue
        a, b = sorted((float(prof.grid[idx]), float(prof.grid[nxt])))
        inner = min(max(best.E, a), b) if a <= best.E <= b else float(prof.grid[idx])
        lo, hi = (a, inner) if step < 0 else (inner, b)
        try:
            ends.append(float(brentq(g, lo, hi, xtol=1e-9)) if g(lo) * g(hi) < 0 else float(prof.grid[idx]))
        except ValueError:
            ends.append(float(prof.grid[idx]))
    return ends[0], ends[1]


def _offset(d: glm.Data, level: float) -> Fit:
    dof = d.m - 3
    distinct = len(set(d.logn.tolist()))
    if dof <= 0 or distinct < 4:
        return _empty("power_law_offset", d.m, (), level,
                      f"not identified: a floor needs at least 4 sizes and 4 points, got {distinct} sizes "
                      f"and {d.m} points", d.family, identified=False)
    prof = profile(d)
    best = prof.best
    phi = glm.dispersion(d, best.pearson, 3)
    # The test's denominator is at least binomial noise: a series that a curve passes through
    # exactly (φ̂ ≈ 0, e.g. a model that predicts one class at every size) must not make any
    # floor look significant.
    phi_test = max(phi, 1.0) if d.family == "binomial" else phi
    f_stat = max(prof.plain.deviance - best.deviance, 0.0) / phi_test if phi_test > 0 else math.inf
    # E = 0 lies on the boundary: the statistic is a 50:50 mixture of 0 and F(1, dof).
    p_value = 0.5 * float(stats.f.sf(f_stat, 1, dof)) if f_stat > 0 else 1.0
    crit = float(stats.f.ppf(level, 1, dof)) * phi  # the interval itself: φ̂ as estimated (covers)
    e_lo, e_hi = _profile_interval(d, prof, crit)
    reasons = []
    if p_value >= OFFSET_TEST_LEVEL:
        reasons.append(f"the floor does not improve on the plain law (p = {p_value:.2g})")
    if e_lo <= 0.0:
        reasons.append("its interval for E reaches 0")
    if e_hi >= prof.grid[-1]:
        reasons.append("its interval for E reaches the smallest observed error")
    if reasons:
        return _empty("power_law_offset", d.m, (), level, "not identified: " + "; ".join(reasons), d.family,
                      identified=False, offset_p=p_value)
    info = glm.full_info(d, best.beta, best.E)
    try:
        cov = np.linalg.inv(info) * phi
    except np.linalg.LinAlgError:
        cov = np.full((3, 3), np.nan)
    t = float(stats.t.ppf(0.5 + level / 2, dof))
    se = np.sqrt(np.abs(np.diag(cov)))
    log_a, alpha = float(best.beta[0]), float(best.beta[1])
    return Fit(
        form="power_law_offset", alpha=alpha, A=math.exp(log_a), E=best.E,
        alpha_ci=(alpha - t * se[1], alpha + t * se[1]),
        A_ci=(_exp(log_a - t * se[0]), _exp(log_a + t * se[0])), E_ci=(e_lo, e_hi),
        n_points=d.m, sizes=(), rmse_log=_rmse_log(d, glm.mean(best.beta, d.logn, best.E)), level=level,
        family=d.family, dof=dof, dispersion=phi, offset_p=p_value, cov=cov,
    )


def _holdout(form: FitForm, n: np.ndarray, y: np.ndarray, counts: np.ndarray | None, k: int,
             level: float) -> Holdout | None:
    """Fit on all but the `k` largest distinct sizes and predict those; None when too few remain."""
    distinct = sorted(set(n.tolist()))
    if len(distinct) - k < N_PARAMS[form] + 1:  # one spare size, or the fit is exact by construction
        return None
    held = distinct[-k:]
    train = ~np.isin(n, held)
    d = _data(n[train], y[train], counts[train] if counts is not None else None)
    f = _plain(d, level) if form == "power_law" else _offset(d, level)
    if not f.ok:
        return None
    observed = np.array([float(np.mean(y[n == s])) for s in held])
    predicted = f.predict(np.array(held, float))
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = float(np.mean(np.abs(predicted - observed) / observed))
        logerr = float(np.mean(np.abs(np.log(predicted) - np.log(observed))))
    return Holdout(
        sizes=tuple(float(s) for s in held), observed=tuple(observed.tolist()),
        predicted=tuple(float(x) for x in predicted), rel_error=rel, log_error=logerr,
    )


def crossover(a: Fit, b: Fit) -> float | None:
    """Size N at which plain power laws `a` and `b` meet (A_a N^−α_a = A_b N^−α_b), if any."""
    if not (a.ok and b.ok) or a.form != "power_law" or b.form != "power_law":
        return None
    if abs(a.alpha - b.alpha) < 1e-12:
        return None
    log_n = (math.log(a.A) - math.log(b.A)) / (a.alpha - b.alpha)
    return math.exp(log_n) if log_n < 700 else math.inf
