"""FID/KID through torchmetrics vs an independent scipy computation; streaming moments."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

from synscale_scorer.stats import FeatureMoments, fid_of_rows, frechet_distance, kernel_inception_distance


def scipy_fid(a: np.ndarray, b: np.ndarray) -> float:
    """The textbook formula: ||mu1-mu2||² + Tr(S1 + S2 - 2 sqrtm(S1 S2))."""
    m1, m2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((m1 - m2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


@pytest.fixture(scope="module")
def features() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    mix = rng.normal(size=(48, 48)) / 7
    a = rng.normal(size=(400, 48)) @ (np.eye(48) + mix)
    b = rng.normal(0.2, 1.3, size=(350, 48)) @ (np.eye(48) - mix)
    return a.astype(np.float32), b.astype(np.float32)


def test_fid_equals_scipy_within_1e6_relative(features: tuple[np.ndarray, np.ndarray]) -> None:
    a, b = features
    ours = fid_of_rows(a, b)
    ref = scipy_fid(a.astype(np.float64), b.astype(np.float64))
    assert ref > 1.0
    assert abs(ours - ref) / ref < 1e-6


def test_fid_of_a_set_against_itself_is_zero(features: tuple[np.ndarray, np.ndarray]) -> None:
    a, _ = features
    assert abs(fid_of_rows(a, a)) < 1e-6


def test_streamed_moments_equal_one_shot(features: tuple[np.ndarray, np.ndarray]) -> None:
    a, b = features
    streamed = FeatureMoments(a.shape[1])
    for chunk in np.array_split(b, 7):
        part = FeatureMoments(a.shape[1])
        part.add_rows(chunk)
        streamed.merge(part)
    one = FeatureMoments.of_rows(b)
    assert streamed.n == one.n == len(b)
    np.testing.assert_allclose(streamed.outer, one.outer, rtol=1e-10)
    real = FeatureMoments.of_rows(a)
    assert abs(frechet_distance(real, streamed) - frechet_distance(real, one)) < 1e-8
    _, cov = streamed.mean_cov()
    np.testing.assert_allclose(cov, np.cov(b.astype(np.float64), rowvar=False), rtol=1e-8, atol=1e-10)


def test_kid_is_reproducible_and_separates_sets(features: tuple[np.ndarray, np.ndarray]) -> None:
    a, b = features
    first = kernel_inception_distance(a, b, subsets=10, subset_size=100, seed=3)
    again = kernel_inception_distance(a, b, subsets=10, subset_size=100, seed=3)
    same = kernel_inception_distance(a[:200], a[200:], subsets=10, subset_size=100, seed=3)
    assert first == again
    assert first[0] > 10 * abs(same[0])


def test_too_few_rows_give_nan() -> None:
    one = np.ones((1, 4), np.float32)
    assert np.isnan(fid_of_rows(one, one))
