"""Fisher scoring for the scaling laws: err = E + exp(log A − α·log N) at a fixed floor E.

Two likelihoods share one routine (ADR 0007):
- *binomial*: a point is k errors of n test images; the mean is the error rate itself, the
  variance μ(1−μ)/n. With E = 0 this is the binomial GLM with log link on log N, so a
  point with k = 0 is an ordinary observation (no log of 0, no clipping).
- *lognormal*: a continuous metric (cross-entropy loss, or errors given without n) is fitted
  as a straight line in log space: the mean is log μ, the variance constant.

Both are scored in the same form — working weights (dm/dη)²/V and a working response — so
the plain law (E = 0) and each point on the offset law's profile over E are the same code.
Dispersion is estimated (quasi-likelihood): seed-to-seed training noise and lack of fit
widen the intervals instead of being ignored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

Family = Literal["binomial", "lognormal"]
MU_MAX = 1.0 - 1e-9  # a binomial error rate cannot reach 1 (chance-level data near it)
ETA_MIN, ETA_MAX = -40.0, 40.0  # keeps trial steps of the line search finite (they are rejected)


@dataclass(frozen=True)
class Data:
    """One series: log sizes, the response (error rate or positive metric) and test counts."""

    logn: np.ndarray
    y: np.ndarray
    n: np.ndarray  # test images per point (ones for the lognormal family)
    family: Family

    @property
    def m(self) -> int:
        return len(self.y)


@dataclass(frozen=True)
class LineFit:
    """(log A, α) at a fixed floor E, with the quantities intervals are built from."""

    beta: np.ndarray  # (log A, α)
    E: float
    deviance: float
    pearson: float  # Pearson χ² (binomial) or residual sum of squares (lognormal)
    info: np.ndarray  # Fisher information of (log A, α) at dispersion 1
    converged: bool


def design(logn: np.ndarray) -> np.ndarray:
    return np.stack([np.ones_like(logn), -logn], axis=1)


def mean(beta: np.ndarray, logn: np.ndarray, e: float) -> np.ndarray:
    eta = np.clip(beta[0] - beta[1] * logn, ETA_MIN, ETA_MAX)
    return np.asarray(e + np.exp(eta))


def _binom_dev(y: np.ndarray, n: np.ndarray, mu: np.ndarray) -> float:
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(y > 0, y * np.log(y / mu), 0.0)
        b = np.where(y < 1, (1 - y) * np.log((1 - y) / (1 - mu)), 0.0)
    return float(2.0 * np.sum(n * (a + b)))


def deviance(d: Data, mu: np.ndarray) -> float:
    """−2 log-likelihood up to a constant (binomial deviance, or RSS in log space)."""
    if d.family == "binomial":
        return _binom_dev(d.y, d.n, np.clip(mu, 1e-300, MU_MAX))
    return float(np.sum((np.log(d.y) - np.log(mu)) ** 2))


def pearson(d: Data, mu: np.ndarray) -> float:
    if d.family == "binomial":
        mu = np.clip(mu, 1e-300, MU_MAX)
        return float(np.sum(d.n * (d.y - mu) ** 2 / (mu * (1 - mu))))
    return float(np.sum((np.log(d.y) - np.log(mu)) ** 2))


def _working(d: Data, beta: np.ndarray, e: float) -> tuple[np.ndarray, np.ndarray]:
    """Working weights and response of one Fisher-scoring step."""
    eta = np.clip(beta[0] - beta[1] * d.logn, ETA_MIN, ETA_MAX)
    power = np.exp(eta)
    mu = e + power
    if d.family == "binomial":
        mu = np.minimum(mu, MU_MAX)
        w = d.n * power**2 / (mu * (1 - mu))
        z = eta + (d.y - mu) / power
    else:
        dg = power / mu  # d log μ / dη
        w = dg**2
        z = eta + (np.log(d.y) - np.log(mu)) / dg
    return w, z


def fit_line(d: Data, e: float = 0.0, start: np.ndarray | None = None, iters: int = 100) -> LineFit:
    """Maximum-likelihood (log A, α) at floor `e` by Fisher scoring with step halving."""
    x = design(d.logn)
    if start is None:
        # Start from the log-log line of (y − e), shrunk away from 0 so k = 0 has a logarithm.
        shrunk = (d.y * d.n + 0.5) / (d.n + 1.0) if d.family == "binomial" else d.y
        target = np.log(np.maximum(shrunk - e, 1e-6 * np.maximum(shrunk, 1e-12)))
        beta = np.linalg.lstsq(x, target, rcond=None)[0]
    else:
        beta = np.asarray(start, float).copy()
    dev = deviance(d, mean(beta, d.logn, e))
    converged = False
    for _ in range(iters):
        w, z = _working(d, beta, e)
        xtw = x.T * w
        info = xtw @ x + 1e-12 * np.eye(2)
        new = np.linalg.solve(info, xtw @ z)
        step = new - beta
        new_dev = deviance(d, mean(new, d.logn, e))
        halvings = 0
        while not (np.isfinite(new_dev) and new_dev <= dev + 1e-12) and halvings < 30:
            step /= 2.0
            new = beta + step
            new_dev = deviance(d, mean(new, d.logn, e))
            halvings += 1
        if not np.isfinite(new_dev) or new_dev > dev + 1e-12:
            break
        done = abs(dev - new_dev) <= 1e-10 * (abs(dev) + 1e-10) and float(np.max(np.abs(step))) < 1e-8
        beta, dev = new, new_dev
        if done:
            converged = True
            break
    mu = mean(beta, d.logn, e)
    w, _ = _working(d, beta, e)
    info = (x.T * w) @ x
    return LineFit(beta, e, dev, pearson(d, mu), info, converged)


def dispersion(d: Data, chi2: float, params: int) -> float:
    """Quasi-likelihood dispersion φ = χ²/(m − p), neither floored nor capped (ADR 0007).

    With t(m − p) quantiles this is the interval whose coverage the simulation checks
    (94–97%). A floor at the binomial φ = 1 sounds safe but over-covers (98–100%): the t
    quantile already pays for the uncertainty of φ̂, and the floor pays for it twice.
    """
    dof = d.m - params
    return chi2 / dof if dof > 0 else math.nan


def full_info(d: Data, beta: np.ndarray, e: float) -> np.ndarray:
    """Fisher information of (log A, α, E) at dispersion 1 (for the offset law's Wald intervals)."""
    eta = np.clip(beta[0] - beta[1] * d.logn, ETA_MIN, ETA_MAX)
    power = np.exp(eta)
    mu = e + power
    jac = np.stack([power, -d.logn * power, np.ones_like(power)], axis=1)  # dμ/dθ
    if d.family == "binomial":
        mu = np.minimum(mu, MU_MAX)
        w = d.n / (mu * (1 - mu))
    else:
        w = 1.0 / mu**2  # d log μ / dθ = (dμ/dθ)/μ
    return np.asarray((jac.T * w) @ jac)
