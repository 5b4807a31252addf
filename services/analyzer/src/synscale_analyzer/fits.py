"""Scaling-law fits (DESIGN §6): err(N) = A·N^(−α) and err(N) = E + A·N^(−α).

Why log space: errors of a scaling series span decades and their noise is roughly
multiplicative, so residuals are taken as log(observed) − log(model). Why robust: one
diverged training run should not tilt a slope, so the fit minimises a soft-L1 (or Huber)
loss with `scipy.optimize.least_squares`. Why a residual bootstrap: a study has few sizes
(4–8), too few for case resampling (a resample often holds only one or two distinct sizes),
whereas resampling log-residuals around the fitted curve keeps every size in every replicate.
The paper's "scaling ability" is α of the plain power law (the slope of the log-log line).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from scipy.optimize import least_squares
from scipy.special import expit

FitForm = Literal["power_law", "power_law_offset"]
Loss = Literal["linear", "soft_l1", "huber"]
FORMS: tuple[FitForm, ...] = ("power_law", "power_law_offset")
N_PARAMS = {"power_law": 2, "power_law_offset": 3}
ERR_FLOOR = 1e-4  # an error of exactly 0 has no logarithm; clip to this
ALPHA_MAX = 10.0


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
    """One fitted law with percentile bootstrap intervals (95% unless `level` says otherwise)."""

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
    boot: np.ndarray = field(default_factory=lambda: np.empty((0, 3)), repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return math.isfinite(self.alpha)

    def predict(self, n: np.ndarray | Sequence[float] | float) -> np.ndarray:
        return _model(self.form, np.array([math.log(self.A), self.alpha, self.E]), np.asarray(n, float))

    def band(self, n: np.ndarray | Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
        """Pointwise percentile band of the bootstrap curves at sizes `n`."""
        ns = np.asarray(n, float)
        if self.boot.shape[0] < 2:
            pred = self.predict(ns)
            return pred, pred
        curves = np.stack([_model(self.form, p, ns) for p in self.boot])
        tail = (1 - self.level) / 2 * 100
        lo, hi = np.percentile(curves, [tail, 100 - tail], axis=0)
        return lo, hi

    def to_dict(self) -> dict[str, Any]:
        return {
            "form": self.form, "alpha": _num(self.alpha), "A": _num(self.A), "E": _num(self.E),
            "alpha_ci": [_num(x) for x in self.alpha_ci], "A_ci": [_num(x) for x in self.A_ci],
            "E_ci": [_num(x) for x in self.E_ci], "n_points": self.n_points,
            "sizes": list(self.sizes), "rmse_log": _num(self.rmse_log), "level": self.level,
            "bootstrap": int(self.boot.shape[0]),
            "holdout": self.holdout.to_dict() if self.holdout else None, "note": self.note,
        }


def _num(x: float) -> float | None:
    """JSON-safe float (NaN/inf → null), rounded so reports compare stably across runs."""
    return None if x is None or not math.isfinite(x) else float(f"{x:.10g}")


def _model(form: str, params: np.ndarray, n: np.ndarray) -> np.ndarray:
    log_a, alpha, e = float(params[0]), float(params[1]), float(params[2]) if len(params) > 2 else 0.0
    power = np.exp(log_a - alpha * np.log(n))
    return power if form == "power_law" else e + power


def _scale(resid: np.ndarray) -> np.ndarray:
    """Robust inlier scale (1.4826·MAD) along the last axis, floored so exact data still fit."""
    return np.maximum(np.median(np.abs(resid), axis=-1) * 1.4826, 1e-3)


def _solve_line(logn: np.ndarray, logy: np.ndarray, loss: Loss) -> np.ndarray:
    """Robust straight line in log-log with scipy's least_squares: (log A, α)."""
    slope, intercept = np.polyfit(logn, logy, 1)
    if loss == "linear":
        return np.array([intercept, -slope])

    def line(p: np.ndarray) -> np.ndarray:
        return logy - (p[0] - p[1] * logn)

    res = least_squares(line, [intercept, -slope], loss=loss, f_scale=float(_scale(line(
        np.array([intercept, -slope])))))
    # Re-estimate the inlier scale from the robust residuals: the OLS residuals that set the
    # first scale are inflated by the very outliers the robust loss should discount.
    res = least_squares(line, res.x, loss=loss, f_scale=float(_scale(line(res.x))))
    return np.asarray(res.x)


def _irls_lines(logn: np.ndarray, logy: np.ndarray, loss: Loss, iters: int = 60) -> np.ndarray:
    """The same robust line for many data sets at once (rows of `logy`), by IRLS.

    soft_l1 and Huber are convex, so iteratively reweighted least squares (weights ρ'(z))
    reaches the optimum least_squares finds, with the same two-stage scale; vectorised over
    bootstrap replicates it is ~100× faster than one least_squares call per replicate.
    Returns rows of (log A, α).
    """
    x = np.stack([np.ones_like(logn), -logn], axis=1)  # (n, 2)
    beta = np.linalg.lstsq(x, logy.T, rcond=None)[0].T  # (B, 2) OLS start
    if loss == "linear":
        return beta
    for _stage in range(2):
        f = _scale(logy - beta @ x.T)[:, None]
        for _ in range(iters):
            r = (logy - beta @ x.T) / f
            w = _weights(r, np.ones((r.shape[0], 1)), loss)
            xtwx = np.einsum("bn,ni,nj->bij", w, x, x)
            xtwy = np.einsum("bn,ni,bn->bi", w, x, logy)
            new = np.linalg.solve(xtwx, xtwy[..., None])[..., 0]
            done = np.max(np.abs(new - beta)) < 1e-10
            beta = new
            if done:
                break
    return beta


def _sigmoid(v: np.ndarray | float) -> np.ndarray:
    return np.asarray(expit(np.asarray(v, float)))


def _logit(p: float) -> float:
    p = min(max(p, 1e-9), 1 - 1e-9)
    return math.log(p / (1 - p))


def _solve_offset(
    logn: np.ndarray, y: np.ndarray, loss: Loss, warm: np.ndarray | None = None,
) -> np.ndarray:
    """err = E + A·N^−α in log space: (log A, α, E) with 0 < α < ALPHA_MAX and 0 ≤ E < min(err).

    The bounds are built into the parameters (α and E through sigmoids) so the solver runs
    unconstrained, which is several times faster than scipy's bounded trust region.
    `warm` (the full-data estimate) replaces the multi-start search in bootstrap replicates.
    """
    logy = np.log(y)
    hi_e = max(float(y.min()) * (1 - 1e-6), 1e-12)

    def unpack(q: np.ndarray) -> tuple[float, float, float]:
        return float(q[0]), float(ALPHA_MAX * _sigmoid(q[1])), float(hi_e * _sigmoid(q[2]))

    def resid(q: np.ndarray) -> np.ndarray:
        log_a, alpha, e = unpack(q)
        return logy - np.log(e + np.exp(log_a - alpha * logn))

    def jac(q: np.ndarray) -> np.ndarray:
        log_a, alpha, e = unpack(q)
        power = np.exp(log_a - alpha * logn)
        total = e + power
        d_alpha = alpha * (1 - alpha / ALPHA_MAX)
        d_e = e * (1 - e / hi_e)
        return -np.stack([power / total, -logn * power / total * d_alpha, d_e / total], axis=1)

    starts: list[tuple[float, float, float]] = []
    if warm is not None:
        starts.append((float(warm[0]), float(warm[1]), float(warm[2])))
    else:
        for frac in (0.0, 0.5, 0.9):
            e0 = frac * hi_e
            # Start A and α from the log-log line of (err − E0) so every start is sensible.
            s2, i2 = np.polyfit(logn, np.log(np.maximum(y - e0, ERR_FLOOR * 1e-3)), 1)
            starts.append((float(i2), float(-s2), e0))
    f_scale = float(_scale(logy - np.polyval(np.polyfit(logn, logy, 1), logn)))
    best: np.ndarray | None = None
    best_cost = math.inf
    for log_a, alpha, e in starts:
        q0 = np.array([log_a, _logit(alpha / ALPHA_MAX), _logit(e / hi_e)])
        res = least_squares(resid, q0, jac=jac, loss=loss, f_scale=f_scale)
        if res.cost < best_cost:
            best, best_cost = np.array(unpack(res.x)), float(res.cost)
    assert best is not None
    return best


def _robust_cost(r: np.ndarray, f: np.ndarray, loss: Loss) -> np.ndarray:
    """least_squares' cost ½·f²·Σρ((r/f)²) per row, so accept/reject matches scipy's objective."""
    z = (r / f) ** 2
    if loss == "soft_l1":
        rho = 2.0 * (np.sqrt(1.0 + z) - 1.0)
    elif loss == "huber":
        rho = np.where(z <= 1.0, z, 2.0 * np.sqrt(z) - 1.0)
    else:
        rho = z
    return 0.5 * (f[:, 0] ** 2) * rho.sum(axis=1)


def _weights(r: np.ndarray, f: np.ndarray, loss: Loss) -> np.ndarray:
    z = (r / f) ** 2
    if loss == "soft_l1":
        return 1.0 / np.sqrt(1.0 + z)
    if loss == "huber":
        return np.where(z <= 1.0, 1.0, 1.0 / np.sqrt(np.maximum(z, 1e-300)))
    return np.ones_like(r)


def _offset_many(
    logn: np.ndarray, y: np.ndarray, loss: Loss, warm: np.ndarray, iters: int = 200,
) -> np.ndarray:
    """_solve_offset for many data sets (rows of `y`) at once, warm-started from one estimate.

    Reweighted Levenberg–Marquardt on the same unconstrained parameters and the same robust
    objective as the scipy path, vectorised over bootstrap replicates. Returns (log A, α, E) rows.
    """
    logy = np.log(y)
    rows = logy.shape[0]
    hi_e = np.maximum(y.min(axis=1) * (1 - 1e-6), 1e-12)[:, None]
    line = np.polynomial.polynomial.polyfit(logn, logy.T, 1)  # (2, B): intercept, slope
    f = _scale(logy - (line[0][:, None] + line[1][:, None] * logn[None, :]))[:, None]
    q = np.column_stack([
        np.full(rows, warm[0]),
        np.full(rows, _logit(float(warm[1]) / ALPHA_MAX)),
        [_logit(min(float(warm[2]), float(h)) / float(h)) for h in hi_e[:, 0]],
    ])

    def unpack(q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return q[:, :1], ALPHA_MAX * _sigmoid(q[:, 1:2]), hi_e * _sigmoid(q[:, 2:3])

    def resid(q: np.ndarray) -> np.ndarray:
        log_a, alpha, e = unpack(q)
        with np.errstate(over="ignore"):  # an overflowing trial step costs inf and is rejected
            return logy - np.log(e + np.exp(log_a - alpha * logn[None, :]))

    lam = np.full(rows, 1e-3)
    r = resid(q)
    cost = _robust_cost(r, f, loss)
    for _ in range(iters):
        log_a, alpha, e = unpack(q)
        with np.errstate(over="ignore"):
            power = np.exp(log_a - alpha * logn[None, :])
        total = e + power
        jac = -np.stack([
            power / total,
            -logn[None, :] * power / total * (alpha * (1 - alpha / ALPHA_MAX)),
            (e * (1 - e / hi_e)) / total,
        ], axis=2)  # (B, n, 3)
        w = _weights(r, f, loss)
        jtj = np.einsum("bn,bni,bnj->bij", w, jac, jac)
        jtr = np.einsum("bn,bni,bn->bi", w, jac, r)
        # Flat data leave a parameter without influence (a zero column of the Jacobian), and
        # lam / 3 per accepted step reaches 0: a ridge relative to the curvature keeps every
        # system solvable; replicates with non-finite terms take no step.
        ridge = 1e-10 * (1.0 + np.trace(jtj, axis1=1, axis2=2))
        damp = jtj + lam[:, None, None] * np.eye(3)[None] * np.diagonal(jtj, axis1=1, axis2=2)[:, None, :] \
            + ridge[:, None, None] * np.eye(3)[None]
        finite = np.isfinite(damp).all(axis=(1, 2)) & np.isfinite(jtr).all(axis=1)
        step = np.zeros_like(q)
        step[finite] = -np.linalg.solve(damp[finite], jtr[finite][..., None])[..., 0]
        q_new = q + step
        r_new = resid(q_new)
        cost_new = _robust_cost(r_new, f, loss)
        better = np.isfinite(cost_new) & (cost_new <= cost)
        q = np.where(better[:, None], q_new, q)
        r = np.where(better[:, None], r_new, r)
        converged = np.abs(cost - cost_new) <= 1e-12 * np.maximum(cost, 1e-300)
        cost = np.where(better, cost_new, cost)
        lam = np.where(better, lam / 3.0, lam * 4.0)
        if np.all(converged | (lam > 1e12)):
            break
    log_a, alpha, e = unpack(q)
    return np.column_stack([log_a[:, 0], alpha[:, 0], e[:, 0]])


def _solve(
    form: FitForm, n: np.ndarray, y: np.ndarray, loss: Loss, warm: np.ndarray | None = None,
) -> np.ndarray:
    """Best (log A, α, E) for one data set; E is 0 for the plain power law."""
    logn = np.log(n)
    if form == "power_law":
        return np.array([*_solve_line(logn, np.log(y), loss), 0.0])
    return _solve_offset(logn, y, loss, warm)


def fit(
    sizes: Sequence[float], errors: Sequence[float], form: FitForm = "power_law", *,
    loss: Loss = "soft_l1", bootstrap: int = 200, holdout_sizes: int = 0, level: float = 0.95,
    seed: int = 0,
) -> Fit:
    """Fit one series. `sizes` may repeat (several seeds per size); every point counts.

    Returns a Fit whose `note` explains a NaN result (too few distinct sizes for the form).
    """
    if form not in N_PARAMS:
        raise ValueError(f"form must be one of {', '.join(FORMS)}, got {form!r}")
    n = np.asarray(sizes, float)
    y = np.asarray(errors, float)
    if n.shape != y.shape or n.ndim != 1:
        raise ValueError(f"sizes and errors must be 1-D of equal length, got {n.shape} and {y.shape}")
    keep = np.isfinite(n) & np.isfinite(y) & (n > 0)
    n, y = n[keep], np.clip(y[keep], ERR_FLOOR, None)
    distinct = tuple(sorted(set(n.tolist())))
    p = N_PARAMS[form]
    if len(distinct) < p:
        note = f"needs at least {p} distinct sizes, got {len(distinct)}"
        return _empty(form, len(n), distinct, level, note)
    params = _solve(form, n, y, loss)
    fitted = _model(form, params, n)
    resid = np.log(y) - np.log(fitted)
    rmse = float(np.sqrt(np.mean(resid**2)))
    boot = _bootstrap(form, n, fitted, resid, p, loss, bootstrap, seed, params)
    tail = (1 - level) / 2 * 100

    def ci(values: np.ndarray) -> tuple[float, float]:
        if values.size < 2:
            return (math.nan, math.nan)
        lo, hi = np.percentile(values, [tail, 100 - tail])
        return (float(lo), float(hi))

    note = "" if boot.shape[0] else "no bootstrap (needs more points than parameters)"
    return Fit(
        form=form, alpha=float(params[1]), A=float(math.exp(params[0])), E=float(params[2]),
        alpha_ci=ci(boot[:, 1]), A_ci=ci(np.exp(boot[:, 0])), E_ci=ci(boot[:, 2]),
        n_points=len(n), sizes=distinct, rmse_log=rmse, level=level,
        holdout=_holdout(form, n, y, holdout_sizes, loss) if holdout_sizes > 0 else None,
        note=note, boot=boot,
    )


def _empty(form: FitForm, npts: int, distinct: tuple[float, ...], level: float, note: str) -> Fit:
    nan2 = (math.nan, math.nan)
    return Fit(form, math.nan, math.nan, math.nan, nan2, nan2, nan2, npts, distinct, math.nan,
               level, None, note)


def _bootstrap(
    form: FitForm, n: np.ndarray, fitted: np.ndarray, resid: np.ndarray, p: int, loss: Loss,
    rounds: int, seed: int, warm: np.ndarray,
) -> np.ndarray:
    """Residual bootstrap in log space; residuals inflated by √(n/(n−p)) for the fitted dof."""
    dof = len(n) - p
    if rounds <= 0 or dof <= 0:
        return np.empty((0, 3))
    rng = np.random.default_rng(seed)
    centred = (resid - resid.mean()) * math.sqrt(len(n) / dof)
    draws = rng.choice(centred, size=(rounds, len(n)), replace=True)
    y_star = np.clip(np.exp(np.log(fitted)[None, :] + draws), ERR_FLOOR, None)
    if form == "power_law":
        lines = _irls_lines(np.log(n), np.log(y_star), loss)
        return np.column_stack([lines, np.zeros(rounds)])
    return _offset_many(np.log(n), y_star, loss, warm)


def _holdout(form: FitForm, n: np.ndarray, y: np.ndarray, k: int, loss: Loss) -> Holdout | None:
    """Fit on all but the `k` largest distinct sizes and predict those; None when too few remain."""
    distinct = sorted(set(n.tolist()))
    if len(distinct) - k < N_PARAMS[form] + 1:  # one spare size, or the fit is exact by construction
        return None
    held = distinct[-k:]
    train = ~np.isin(n, held)
    params = _solve(form, n[train], y[train], loss)
    observed = np.array([float(np.mean(y[n == s])) for s in held])
    predicted = _model(form, params, np.array(held, float))
    return Holdout(
        sizes=tuple(float(s) for s in held), observed=tuple(observed.tolist()),
        predicted=tuple(float(x) for x in predicted),
        rel_error=float(np.mean(np.abs(predicted - observed) / observed)),
        log_error=float(np.mean(np.abs(np.log(predicted) - np.log(observed)))),
    )


def crossover(a: Fit, b: Fit) -> float | None:
    """Size N at which plain power laws `a` and `b` meet (A_a N^−α_a = A_b N^−α_b), if any."""
    if not (a.ok and b.ok) or a.form != "power_law" or b.form != "power_law":
        return None
    if abs(a.alpha - b.alpha) < 1e-12:
        return None
    log_n = (math.log(a.A) - math.log(b.A)) / (a.alpha - b.alpha)
    return math.exp(log_n) if log_n < 700 else math.inf
