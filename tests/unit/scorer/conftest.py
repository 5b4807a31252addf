"""Small real models and synthetic shards for the scorer's unit tests.

The networks are the real architectures with random weights (FashionCNN, LPIPS AlexNet)
and a tiny convolutional stand-in for Inception (16-d features) — the full Inception-v3
is exercised only by the few tests marked slow.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from synscale import ids
from synscale.datasets import fashion_mnist
from synscale.shards import Sample, encode_png, write_shard
from synscale.store.file import FileStore
from synscale_scorer.plan import Cell, CellPlan, ScoringOptions
from synscale_scorer.reference.embedded import FashionCNN
from synscale_scorer.reference.fashion import EmbeddedReference
from synscale_scorer.service import NetworkCache, ScorerService

STUDY_YAML = """
name: tiny
generators:
  - name: embedded
    backend: embedded
    resolution: 32
    cfg: [2.0]
strategies: [classname]
images_per_class: [2, 6]
classes:
  set: fashion-mnist
  ids: [tshirt, trouser, sandal]
scoring:
  lpips_pairs: 4
  fid_samples_per_class: 4
"""


class TinyFeatures(nn.Module):
    """A 16-d stand-in for Inception: uint8 (N, C, H, W) → pooled conv features."""

    num_features = 16
    extractor_id = "tiny-test-features"

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.conv = nn.Conv2d(3, 16, 3, padding=1)
        with torch.no_grad():
            self.conv.weight.copy_(torch.randn(self.conv.weight.shape, generator=g) * 0.3)
            self.conv.bias.zero_()
        self.calls = 0

    @torch.inference_mode()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        x = images.float() / 255.0
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return torch.relu(self.conv(x)).mean((2, 3))


class TinyReference:
    """A cheap stand-in reference over the Fashion-MNIST labels (for volume tests)."""

    name = "tiny-reference"
    class_ids = fashion_mnist.CLASS_IDS
    feature_dim = 8

    def __init__(self, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.w_feat = torch.randn(16, 8, generator=g)
        self.w_head = torch.randn(8, 10, generator=g)

    def __call__(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.nn.functional.adaptive_avg_pool2d(images.float().mean(1, keepdim=True) / 255, 4)
        feats = torch.relu(x.flatten(1) @ self.w_feat)
        return feats @ self.w_head, feats


def random_reference(seed: int = 0) -> EmbeddedReference:
    torch.manual_seed(seed)
    return EmbeddedReference(model=FashionCNN().eval())


def random_lpips(seed: int = 0) -> nn.Module:
    from synscale_scorer.perceptual import build_lpips

    torch.manual_seed(seed)
    import lpips

    trunk = lpips.pretrained_networks.alexnet(pretrained=False).state_dict()
    return build_lpips("alex", trunk=trunk)


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread() -> Iterator[None]:
    """One intra-op thread: on a shared 2-core machine OpenMP spin-waiting makes small
    convolutions 10x slower with 2 threads (measured). Module-scoped so it also covers
    module fixtures; restored after each module."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_models() -> dict[str, object]:
    return {"ref:embedded": random_reference(), "inception": TinyFeatures(), "lpips:alex": random_lpips()}


@pytest.fixture
def network_cache(tiny_models: dict[str, object]) -> NetworkCache:
    return NetworkCache(env={}, preloaded=tiny_models)


@pytest.fixture
def store(tmp_path: Path) -> FileStore:
    return FileStore(tmp_path / "store", "synscale")


@pytest.fixture
def service(store: FileStore, network_cache: NetworkCache) -> ScorerService:
    return ScorerService(store, network_cache, env={})


def real_images(class_id: str, count: int, offset: int = 0) -> list[np.ndarray]:
    """Real Fashion-MNIST test images of a class (stand-ins for generated ones)."""
    split = fashion_mnist.load("test")
    idx = split.per_class_indices()[fashion_mnist.CLASS_IDS.index(class_id)][offset : offset + count]
    return [split.images[i] for i in idx]


def make_shard(study: str, cell: Cell, class_id: str, start: int, images: list[np.ndarray]) -> bytes:
    samples = []
    for k, im in enumerate(images):
        index = start + k
        meta = {"study_id": study, "generator": cell.generator, "cfg": cell.cfg,
                "strategy": cell.strategy, "class_id": class_id,
                "class_index": fashion_mnist.CLASS_IDS.index(class_id), "index": index,
                "seed": ids.image_seed(study, cell.generator, cell.strategy, class_id, index),
                "prompt": class_id}
        samples.append(Sample(ids.sample_key(class_id, index), encode_png(im), meta))
    return write_shard(samples)


def tiny_plan(classes: tuple[str, ...] = ("tshirt", "trouser"), n: int = 6, **opts: object) -> CellPlan:
    options = ScoringOptions(**{"lpips_pairs": 4, "fid_samples_per_class": 4, "batch_size": 4,
                                "kid_subsets": 5, **opts})
    return CellPlan("study-x", Cell("embedded", 2.0, "classname"), classes, dict.fromkeys(classes, n),
                    options, image_mode="L", image_size=(32, 32))
