"""Recognizability and diversity arithmetic against independent computations."""

from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from synscale_scorer import metrics


def test_precision_recall_f1_match_sklearn() -> None:
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 4, 300)
    y_pred = np.where(rng.random(300) < 0.6, y_true, rng.integers(0, 4, 300))
    cm = confusion_matrix(y_true, y_pred, labels=range(4))
    ours = metrics.precision_recall_f1(cm)
    p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, labels=range(4), zero_division=0)
    np.testing.assert_allclose([s.precision for s in ours], p, rtol=1e-12)
    np.testing.assert_allclose([s.recall for s in ours], r, rtol=1e-12)
    np.testing.assert_allclose([s.f1 for s in ours], f, rtol=1e-12)
    assert metrics.macro_f1(ours) == np.float64(f.mean())


def test_class_without_images_is_left_out_of_macro_f1() -> None:
    cm = np.array([[3, 1, 0], [0, 4, 0], [0, 0, 0]])
    scores = metrics.precision_recall_f1(cm)
    assert math.isnan(scores[2].f1) and scores[2].precision == 0.0
    assert metrics.macro_f1(scores) == np.mean([scores[0].f1, scores[1].f1])


def test_feature_std_from_sums_equals_numpy_std() -> None:
    rng = np.random.default_rng(1)
    feats = rng.normal(3.0, 2.0, size=(500, 7)) * np.arange(1, 8)
    got = metrics.feature_std(len(feats), feats.sum(0), np.square(feats).sum(0))
    assert abs(got - feats.std(0, ddof=1).mean()) < 1e-9
    assert math.isnan(metrics.feature_std(1, feats[0], feats[0] ** 2))
