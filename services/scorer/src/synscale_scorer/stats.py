"""FID and KID through torchmetrics, on features computed once and accumulated in a stream.

torchmetrics' FrechetInceptionDistance already keeps exactly the statistics a stream
needs: float64 running sums of features and of their outer products (O(d²) memory
whatever the image count). We feed it features through an identity "feature extractor"
(`RowFeatures`) because each image's Inception features are computed once and used for
overall FID, per-class FID and KID; partial sums from many shards are merged by adding
those same states. The Fréchet and KID arithmetic is torchmetrics' own.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance


class RowFeatures(nn.Module):
    """Identity extractor: torchmetrics receives precomputed (N, d) feature rows."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        return rows


def _as_tensor(rows: np.ndarray | torch.Tensor) -> torch.Tensor:
    return rows if isinstance(rows, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(rows))


@dataclass
class FeatureMoments:
    """n, Σx and Σxxᵀ in float64 — the sufficient statistics of a Gaussian fit."""

    dim: int
    n: int = 0
    total: np.ndarray = field(default_factory=lambda: np.zeros(0))
    outer: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))

    def __post_init__(self) -> None:
        if self.total.shape != (self.dim,):
            self.total = np.zeros(self.dim, dtype=np.float64)
        if self.outer.shape != (self.dim, self.dim):
            self.outer = np.zeros((self.dim, self.dim), dtype=np.float64)

    def add_rows(self, rows: np.ndarray | torch.Tensor) -> None:
        """Same arithmetic as FrechetInceptionDistance.update: rows → float64, Σ and XᵀX."""
        f = _as_tensor(rows).double()
        if f.ndim != 2 or f.shape[1] != self.dim:
            raise ValueError(f"expected (N, {self.dim}) feature rows, got {tuple(f.shape)}")
        self.total += f.sum(dim=0).numpy()
        self.outer += f.t().mm(f).numpy()
        self.n += int(f.shape[0])

    def merge(self, other: FeatureMoments) -> None:
        if other.dim != self.dim:
            raise ValueError(f"cannot merge {other.dim}-d moments into {self.dim}-d ones")
        self.total += other.total
        self.outer += other.outer
        self.n += other.n

    @classmethod
    def of_rows(cls, rows: np.ndarray | torch.Tensor) -> FeatureMoments:
        m = cls(int(rows.shape[1]))
        m.add_rows(rows)
        return m

    def mean_cov(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean and unbiased covariance (as torchmetrics computes them), for checks."""
        mean = self.total / self.n
        return mean, (self.outer - self.n * np.outer(mean, mean)) / (self.n - 1)


def frechet_distance(real: FeatureMoments, fake: FeatureMoments) -> float:
    """FID between two moment sets, computed by torchmetrics' FrechetInceptionDistance."""
    if real.dim != fake.dim:
        raise ValueError(f"feature dims differ: real {real.dim}, fake {fake.dim}")
    if real.n < 2 or fake.n < 2:
        return float("nan")
    metric = FrechetInceptionDistance(feature=RowFeatures(real.dim), reset_real_features=False)
    metric.real_features_sum = torch.from_numpy(real.total.copy())
    metric.real_features_cov_sum = torch.from_numpy(real.outer.copy())
    metric.real_features_num_samples = torch.tensor(real.n, dtype=torch.long)
    metric.fake_features_sum = torch.from_numpy(fake.total.copy())
    metric.fake_features_cov_sum = torch.from_numpy(fake.outer.copy())
    metric.fake_features_num_samples = torch.tensor(fake.n, dtype=torch.long)
    metric.orig_dtype = torch.float64  # keep the result in float64 (set by update() otherwise)
    metric._update_count = 1  # states were set directly; silence "compute before update"
    value = float(metric.compute())
    # Rounding can leave a tiny negative value for identical sets; FID is a distance.
    return max(value, 0.0) if value > -1e-6 * max(1.0, abs(value)) else value


def fid_of_rows(real_rows: np.ndarray, fake_rows: np.ndarray) -> float:
    return frechet_distance(FeatureMoments.of_rows(real_rows), FeatureMoments.of_rows(fake_rows))


def kernel_inception_distance(
    real_rows: np.ndarray, fake_rows: np.ndarray, subsets: int = 100, subset_size: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """(KID mean, std) by torchmetrics' KernelInceptionDistance on bounded row samples.

    Subsets hold `subset_size` rows, at most half the smaller sample (so that subsets
    differ and the std means something); torchmetrics draws them with the global torch
    RNG, so it runs under a forked RNG seeded with `seed` (reproducible).
    """
    n = min(len(real_rows), len(fake_rows)) // 2
    if n < 2:
        return float("nan"), float("nan")
    dim = int(real_rows.shape[1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "saves all features": ours are bounded samples
        metric = KernelInceptionDistance(
            feature=RowFeatures(dim), subsets=subsets, subset_size=min(subset_size, n),
            reset_real_features=False,
        )
    metric.update(_as_tensor(real_rows).double(), real=True)
    metric.update(_as_tensor(fake_rows).double(), real=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        mean, std = metric.compute()
    return float(mean), float(std)
