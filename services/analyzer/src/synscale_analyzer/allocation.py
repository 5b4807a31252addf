"""Per-class budget allocation: spend a cell's images where the per-class laws say they help most.

The mean error over classes is (1/C)·Σ_c A_c·n_c^−α_c. Minimising it subject to Σ n_c = T
(Lagrange) sets each class's marginal gain equal: α_c·A_c·n_c^−(1+α_c) = λ, so
n_c = (α_c·A_c / λ)^(1/(1+α_c)), and λ is the one root of Σ n_c(λ) = T (the sum falls
monotonically in λ; found by bisection in log λ). With equal α this is n_c ∝ (α·A_c)^(1/(1+α)).

Only classes whose slope the pilot pins are allocated (estimable per `class_slopes.py`);
the others keep the uniform share, since nothing says which way to move them. The classes
are kept within [uniform / max_shift, uniform · max_shift] (a trust region: a per-class law
fitted on a few sizes is not known far from them; a class with α ≤ 0 gets the lower bound).
The predicted gain is computed for the rounded allocation against uniform under draws from
every class's fit (multivariate t, as in `planner.py`), so its interval includes the fits'
uncertainty; ADR 0030.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import brentq

from synscale_analyzer.class_slopes import REASONS, ClassSlope
from synscale_analyzer.model import num as _num
from synscale_analyzer.planner import law_draws

DEFAULT_MAX_SHIFT = 4.0


def lagrange_allocation(A: Sequence[float], alpha: Sequence[float], total: float,
                        lo: float = 0.0, hi: float = math.inf) -> np.ndarray:
    """Real-valued n minimising Σ A_c n_c^−α_c with Σ n_c = total and lo ≤ n_c ≤ hi."""
    a = np.asarray(A, float)
    al = np.asarray(alpha, float)
    k = len(a)
    if k == 0:
        return np.zeros(0)
    if not lo * k <= total <= hi * k:
        raise ValueError(f"total {total} is outside [{lo * k}, {hi * k}] for {k} classes within [{lo}, {hi}]")
    gain = al * a  # the marginal gain at n = 1
    helps = (al > 0) & (a > 0)

    def n_of(log_lam: float) -> np.ndarray:
        with np.errstate(over="ignore", divide="ignore"):
            n = np.where(helps, np.exp((np.log(np.where(helps, gain, 1.0)) - log_lam) / (1.0 + al)), lo)
        return np.clip(n, lo, hi)

    if not helps.any():
        return np.full(k, total / k)

    def excess(log_lam: float) -> float:
        return float(n_of(log_lam).sum() - total)

    lo_l, hi_l = -50.0, 50.0
    while excess(lo_l) < 0 and lo_l > -1e4:
        lo_l *= 2
    while excess(hi_l) > 0 and hi_l < 1e4:
        hi_l *= 2
    if excess(lo_l) < 0:  # every class that helps is at its upper bound: fill the others evenly
        n = n_of(lo_l)
        rest = ~helps
        n[rest] = np.clip((total - n[helps].sum()) / max(rest.sum(), 1), lo, hi)
        return n
    return n_of(brentq(excess, lo_l, hi_l, xtol=1e-12))


def round_to_total(x: np.ndarray, total: int, lo: int = 1) -> np.ndarray:
    """Integers that sum to `total`, each floor/ceil of x (largest remainders get the ceiling)."""
    base = np.maximum(np.floor(x).astype(int), lo)
    short = total - int(base.sum())
    order = np.argsort(-(x - np.floor(x)), kind="stable")
    i = 0
    while short != 0 and len(x):
        j = order[i % len(x)]
        if short > 0:
            base[j] += 1
            short -= 1
        elif base[j] > lo:
            base[j] -= 1
            short += 1
        i += 1
    return base


@dataclass(frozen=True)
class Allocation:
    """Images per class for one cell at a uniform target, and its predicted effect."""

    label: str
    uniform: int
    counts: dict[str, int]
    estimable: tuple[str, ...]
    not_estimable: dict[str, str]  # class id → reason
    predicted_uniform: float  # mean predicted error over the estimable classes, uniform
    predicted_allocated: float
    gain: float  # mean error over all classes, uniform − allocated (> 0: the allocation helps)
    gain_ci: tuple[float, float]
    p_gain: float  # share of draws in which the allocation beats uniform
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label, "uniform_per_class": self.uniform, "images_per_class": dict(self.counts),
            "estimable": list(self.estimable), "not_estimable": dict(self.not_estimable),
            "predicted_uniform": _num(self.predicted_uniform),
            "predicted_allocated": _num(self.predicted_allocated), "gain": _num(self.gain),
            "gain_ci": [_num(x) for x in self.gain_ci], "p_gain": _num(self.p_gain), "note": self.note,
            "method": "Lagrange optimum of the mean of per-class power laws; estimable classes only, "
                      "within the trust region; gain over uniform under multivariate-t draws of the "
                      "per-class fits",
        }


def allocate(label: str, slopes: Sequence[ClassSlope], class_ids: Sequence[str], uniform: int, *,
             max_shift: float = DEFAULT_MAX_SHIFT, draws: int = 4000, level: float = 0.95,
             seed: int = 0) -> Allocation:
    """Allocate `uniform × classes` images over `class_ids` from per-class slopes of one cell."""
    if uniform < 1:
        raise ValueError(f"the uniform share must be >= 1 image per class, got {uniform}")
    by_id = {c.class_id: c for c in slopes}
    est = [cid for cid in class_ids if cid in by_id and by_id[cid].estimable and by_id[cid].law is not None]
    off = {cid: (REASONS[by_id[cid].reason] if cid in by_id and by_id[cid].reason else "no per-class fit")
           for cid in class_ids if cid not in est}
    counts = dict.fromkeys(class_ids, uniform)
    nan2 = (math.nan, math.nan)
    if len(est) < 2:
        return Allocation(label, uniform, counts, tuple(est), off, math.nan, math.nan, 0.0, (0.0, 0.0),
                          math.nan,
                          f"{len(est)} estimable class(es): nothing to reallocate; uniform kept")
    laws = [by_id[cid].law for cid in est]
    A = [f.A for f in laws if f is not None]
    al = [f.alpha for f in laws if f is not None]
    lo, hi = max(1.0, uniform / max_shift), uniform * max_shift
    x = lagrange_allocation(A, al, float(uniform * len(est)), lo, hi)
    n = round_to_total(x, uniform * len(est), lo=max(1, math.ceil(lo)))
    counts.update({cid: int(v) for cid, v in zip(est, n, strict=True)})
    du = np.stack([law_draws(f, uniform, draws, np.random.default_rng(seed + i))
                   for i, f in enumerate(laws) if f is not None])
    da = np.stack([law_draws(f, float(v), draws, np.random.default_rng(seed + i))  # same draws: paired
                   for i, (f, v) in enumerate(zip(laws, n, strict=True)) if f is not None])
    gain = (du - da).sum(axis=0) / len(class_ids)
    tail = (1 - level) / 2
    # Point predictions clipped like the draws: an error rate cannot leave [0, 1], even where a
    # class's law (α < 0 at pilot noise) would extrapolate it there.
    point_u = float(np.mean([np.clip(f.predict([uniform])[0], 0, 1) for f in laws if f is not None]))
    point_a = float(np.mean([np.clip(f.predict([v])[0], 0, 1) for f, v in zip(laws, n, strict=True)
                             if f is not None]))
    lo_g, hi_g = np.quantile(gain, [tail, 1 - tail])
    point_gain = (point_u - point_a) * len(est) / len(class_ids)
    return Allocation(label, uniform, counts, tuple(est), off, point_u, point_a, point_gain,
                      (float(lo_g), float(hi_g)) if draws else nan2, float(np.mean(gain > 0)))
