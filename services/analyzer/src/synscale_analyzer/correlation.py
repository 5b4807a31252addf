"""Correlations of per-class scalability with recognizability and diversity, at the class level.

The unit of replication is the class (docs/statistics.md). Within one cell the classes are the
observations: Pearson r with a Fisher-z interval, Spearman ρ, and their p-values. Across
cells the same class appears once per cell, so (cell, class) pairs are not independent and
a pooled p-value over pairs double-counts. The pooled statistic is the mean within-cell
Spearman ρ; its p-value comes from permuting class labels (one permutation applied in every
cell, so a class keeps its slopes together), and its interval from resampling classes.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from synscale_analyzer.model import num as _num

PERMUTATIONS = 4999
BOOTSTRAP = 1000


@dataclass(frozen=True)
class Correlation:
    """Pearson and Spearman correlation over classes (NaN when undefined), with a 95% interval for r."""

    x: str
    y: str
    n: int
    pearson_r: float
    pearson_p: float
    spearman_rho: float
    spearman_p: float
    r_ci: tuple[float, float] = (math.nan, math.nan)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {k: _num(v) if isinstance(v, float) else v for k, v in self.__dict__.items()}
        out["r_ci"] = [_num(v) for v in self.r_ci]
        return out


def correlate(x: Sequence[float], y: Sequence[float], x_name: str, y_name: str) -> Correlation:
    xs, ys = np.asarray(x, float), np.asarray(y, float)
    keep = np.isfinite(xs) & np.isfinite(ys)
    xs, ys = xs[keep], ys[keep]
    nan = math.nan
    if len(xs) < 3 or np.ptp(xs) == 0 or np.ptp(ys) == 0:
        return Correlation(x_name, y_name, len(xs), nan, nan, nan, nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pr = stats.pearsonr(xs, ys)
        sr = stats.spearmanr(xs, ys)
    r = float(pr.statistic)
    ci = (nan, nan)
    if len(xs) > 3 and abs(r) < 1:
        z, half = math.atanh(r), 1.959963984540054 / math.sqrt(len(xs) - 3)
        ci = (math.tanh(z - half), math.tanh(z + half))
    return Correlation(x_name, y_name, len(xs), r, float(pr.pvalue), float(sr.statistic),
                       float(sr.pvalue), ci)


@dataclass(frozen=True)
class PooledCorrelation:
    """Mean within-cell Spearman ρ over cells, tested by class-level permutation."""

    x: str
    y: str
    classes: int  # distinct classes with at least one estimable slope: the n of the test
    pairs: int  # (cell, class) pairs that entered
    cells: int
    rho: float
    p: float
    ci: tuple[float, float]
    method: str = "mean within-cell Spearman ρ; class-level permutation p, class bootstrap 95% CI"

    def to_dict(self) -> dict[str, Any]:
        return {"x": self.x, "y": self.y, "classes": self.classes, "pairs": self.pairs, "cells": self.cells,
                "rho": _num(self.rho), "p": _num(self.p), "ci": [_num(v) for v in self.ci],
                "method": self.method}


def _masked_rank(v: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Ranks of the masked entries among themselves, row-wise (unmasked entries get NaN)."""
    filled = np.where(mask, v, np.inf)
    ranks = np.argsort(np.argsort(filled, axis=-1), axis=-1).astype(float)
    return np.where(mask, ranks, np.nan)


def _mean_rho(alpha: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """Mean over cells of Spearman ρ for replicates: `alpha`, `cov` (R, cells, classes)."""
    cov = np.broadcast_to(cov, alpha.shape)
    mask = np.isfinite(alpha) & np.isfinite(cov)
    ra = _masked_rank(alpha, mask)
    rx = _masked_rank(cov, mask)
    cnt = mask.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        ma = np.nansum(ra, axis=-1) / cnt
        mx = np.nansum(rx, axis=-1) / cnt
        da, dx = ra - ma[..., None], rx - mx[..., None]
        rho = np.nansum(da * dx, axis=-1) / np.sqrt(np.nansum(da**2, axis=-1) * np.nansum(dx**2, axis=-1))
    rho = np.where(cnt >= 3, rho, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.asarray(np.nanmean(rho, axis=-1))


def _null(alpha: np.ndarray, covariate: np.ndarray, perms: np.ndarray) -> np.ndarray:
    """The statistic under each class permutation of α (the same permutation in every cell)."""
    if not (np.isfinite(alpha).all() and np.isfinite(covariate).all()):
        return _mean_rho(alpha[:, perms].transpose(1, 0, 2), covariate)
    # Complete data: ranks, their means and norms do not change under permutation, so each
    # permuted ρ is one gather and a dot product instead of a re-ranking.
    ra = np.argsort(np.argsort(alpha, axis=-1), axis=-1).astype(float)
    rx = np.argsort(np.argsort(covariate, axis=-1), axis=-1).astype(float)
    ra -= ra.mean(axis=-1, keepdims=True)
    rx -= rx.mean(axis=-1, keepdims=True)
    norm = np.sqrt((ra**2).sum(axis=-1) * (rx**2).sum(axis=-1))  # (cells,)
    rho = np.einsum("cpk,ck->pc", ra[:, perms], rx) / norm[None]
    return np.asarray(rho.mean(axis=1))


def pooled(alpha: np.ndarray, covariate: np.ndarray, x: str, y: str, seed: int = 0,
           bootstrap: int = BOOTSTRAP) -> PooledCorrelation:
    """`alpha`, `covariate`: (cells, classes), NaN where a class is not estimable or not scored.

    `bootstrap` = 0 skips the interval (the permutation p-value does not need it).
    """
    alpha, covariate = np.asarray(alpha, float), np.asarray(covariate, float)
    ok = np.isfinite(alpha) & np.isfinite(covariate)
    classes = int(ok.any(axis=0).sum())
    nan = math.nan
    observed = float(_mean_rho(alpha[None], covariate)[0]) if classes >= 3 else nan
    if not math.isfinite(observed):
        return PooledCorrelation(x, y, classes, int(ok.sum()), alpha.shape[0], nan, nan, (nan, nan))
    rng = np.random.default_rng(seed)
    c = alpha.shape[1]
    if math.factorial(c) <= PERMUTATIONS + 1:
        perms = np.array(list(itertools.permutations(range(c))))
    else:
        perms = rng.permuted(np.tile(np.arange(c), (PERMUTATIONS, 1)), axis=1)
    null = _null(alpha, covariate, perms)
    null = null[np.isfinite(null)]
    exact = math.factorial(c) <= PERMUTATIONS + 1
    extreme = int(np.sum(np.abs(null) >= abs(observed) - 1e-12))
    p = extreme / len(null) if exact else (extreme + 1) / (len(null) + 1)
    picks = rng.integers(0, c, size=(bootstrap, c))  # classes drawn with all their cells
    boot = _mean_rho(alpha[:, picks].transpose(1, 0, 2), covariate[:, picks].transpose(1, 0, 2))
    boot = boot[np.isfinite(boot)]
    ci = (float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))) if boot.size > 10 else (nan, nan)
    return PooledCorrelation(x, y, classes, int(ok.sum()), alpha.shape[0], observed, float(p), ci)
