"""The paper's per-class quality and diversity numbers, from accumulated sums.

Recognizability: the reference labels each synthetic image; rows of the confusion
matrix are intended classes, columns predicted ones (restricted to the study's classes).
Precision, recall and F1 per class; macro-F1 = mean F1 over classes that have images.

Diversity: per class, the standard deviation of each reference-feature dimension over
the class's images (unbiased, n - 1), averaged over dimensions; the cell's diversity is
the mean over classes. Computed from float64 Σx and Σx² so it streams.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PRF:
    precision: float
    recall: float
    f1: float


def precision_recall_f1(confusion: np.ndarray) -> list[PRF]:
    """Per-class PRF of a (C, C) confusion matrix (rows intended, columns predicted).

    Precision of a class nobody predicted is 0 (as scikit-learn's zero_division=0); a
    class without images has recall NaN and F1 NaN (it has no F1 to average).
    """
    cm = np.asarray(confusion, dtype=np.float64)
    tp = np.diag(cm)
    predicted = cm.sum(0)
    actual = cm.sum(1)
    out = []
    for c in range(cm.shape[0]):
        if actual[c] == 0:
            out.append(PRF(float(tp[c] / predicted[c]) if predicted[c] else 0.0, math.nan, math.nan))
            continue
        p = float(tp[c] / predicted[c]) if predicted[c] else 0.0
        r = float(tp[c] / actual[c])
        out.append(PRF(p, r, 2 * p * r / (p + r) if p + r > 0 else 0.0))
    return out


def macro_f1(scores: list[PRF]) -> float:
    values = [s.f1 for s in scores if not math.isnan(s.f1)]
    return float(np.mean(values)) if values else math.nan


def feature_std(n: int, total: np.ndarray, total_sq: np.ndarray) -> float:
    """Mean over dimensions of the unbiased per-dimension std, from Σx and Σx²."""
    if n < 2:
        return math.nan
    mean = total / n
    var = (total_sq - n * mean * mean) / (n - 1)
    return float(np.sqrt(np.clip(var, 0.0, None)).mean())


def nanmean(values: list[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite)) if finite else math.nan
