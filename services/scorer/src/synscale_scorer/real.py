"""Real-image Inception features, computed once per (real set, extractor, sample size) and
cached in the object store so every cell and every scorer instance reuses them.

Per class the real sample is the first K images in a fixed order (Fashion-MNIST: the
train split in dataset order; an ImageFolder: file names sorted), K =
fid_samples_per_class — the same count as the synthetic per-class sample, so per-class
FIDs compare like with like. The overall real statistics are the union of those samples.

Cache keys: `scorer-cache/real/<source>/<extractor>/k<K>/<class>.npz` (float32 rows) and
`.../overall-<digest of class list>.npz` (float64 moments).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from synscale import ids
from synscale.datasets import fashion_mnist
from synscale.errors import InvalidInput, PreconditionFailed
from synscale.store.base import ObjectStore
from synscale_scorer import npzio
from synscale_scorer.scoring import FeatureFn, image_array
from synscale_scorer.stats import FeatureMoments

log = logging.getLogger(__name__)
CACHE_PREFIX = "scorer-cache/real"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


class RealSource(Protocol):
    name: str

    def class_images(self, class_id: str, k: int) -> list[np.ndarray]:
        """Up to k uint8 (C, H, W) images of the class, in the source's fixed order."""
        ...


class FashionMnistSource:
    name = "fashion-mnist-train"

    def class_images(self, class_id: str, k: int) -> list[np.ndarray]:
        if class_id not in fashion_mnist.CLASS_IDS:
            raise InvalidInput("class_id", f"{class_id!r} is not a Fashion-MNIST class")
        split = fashion_mnist.load("train")
        idx = split.per_class_indices()[fashion_mnist.CLASS_IDS.index(class_id)][:k]
        return [split.images[i][None].copy() for i in idx]


class ImageFolderSource:
    """`root/<class id>/*.{png,jpg,...}` (ImageNet train/val layout by WordNet id)."""

    def __init__(self, root: Path) -> None:
        if not root.is_dir():
            raise PreconditionFailed(f"real image folder {root} does not exist")
        self.root = root
        self.name = ids.safe_component(f"imagefolder-{root.name}-{ids.digest(str(root.resolve()), length=8)}")

    def class_images(self, class_id: str, k: int) -> list[np.ndarray]:
        from PIL import Image

        folder = self.root / class_id
        if not folder.is_dir():
            folder = self.root / ids.safe_component(class_id)
        if not folder.is_dir():
            raise PreconditionFailed(f"real image folder has no class folder {class_id!r} under {self.root}")
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[:k]
        out = []
        for f in files:
            with Image.open(f) as im:
                out.append(image_array(im.convert("RGB")))
        return out


def source_for(real_set: str, real_path: str) -> RealSource | None:
    if real_set == "none":
        return None
    if real_path:
        return ImageFolderSource(Path(real_path).expanduser())
    if real_set == "fashion-mnist":
        return FashionMnistSource()
    raise PreconditionFailed(f"real set {real_set!r} needs real.path (an ImageFolder root) for FID")


def features_of(extractor: FeatureFn, images: Sequence[np.ndarray], batch: int = 32) -> np.ndarray:
    """Feature rows of images that may differ in size (batched per size, order kept)."""
    rows: list[np.ndarray | None] = [None] * len(images)
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for i, im in enumerate(images):
        by_shape.setdefault(im.shape, []).append(i)
    for members in by_shape.values():
        for s in range(0, len(members), batch):
            chunk = members[s : s + batch]
            out = extractor(torch.from_numpy(np.stack([images[i] for i in chunk]))).float().numpy()
            for i, r in zip(chunk, out, strict=True):
                rows[i] = r
    return np.stack([r for r in rows if r is not None]).astype(np.float32) if images else np.zeros((0, 0))


class RealFeatureCache:
    def __init__(self, store: ObjectStore, source: RealSource, extractor: FeatureFn,
                 extractor_id: str, k: int) -> None:
        self.store = store
        self.source = source
        self.extractor = extractor
        self.k = k
        src, ext = ids.safe_component(source.name), ids.safe_component(extractor_id)
        self.prefix = f"{CACHE_PREFIX}/{src}/{ext}/k{k}"

    def class_rows(self, class_id: str) -> np.ndarray:
        key = f"{self.prefix}/{ids.safe_component(class_id)}.npz"
        if self.store.exists(key):
            return npzio.loads(self.store.get(key))[0]["rows"]
        images = self.source.class_images(class_id, self.k)
        if len(images) < 2:
            raise PreconditionFailed(
                f"real set {self.source.name} has {len(images)} image(s) of {class_id!r}")
        log.info("computing real Inception features: %s %s (%d images)",
                 self.source.name, class_id, len(images))
        rows = features_of(self.extractor, images)
        self.store.put_if_changed(key, npzio.dumps({"rows": rows}, {"class_id": class_id, "k": self.k}))
        return rows

    def overall(self, class_ids: Sequence[str]) -> FeatureMoments:
        key = f"{self.prefix}/overall-{ids.digest(list(class_ids))}.npz"
        if self.store.exists(key):
            a = npzio.loads(self.store.get(key))[0]
            return FeatureMoments(int(a["outer"].shape[0]), int(a["n"]), a["total"], a["outer"])
        moments: FeatureMoments | None = None
        for cid in class_ids:
            rows = self.class_rows(cid)
            moments = moments or FeatureMoments(int(rows.shape[1]))
            moments.add_rows(rows)
        if moments is None:
            raise PreconditionFailed("no classes to compute real statistics for")
        arrays = {"n": np.array(moments.n, np.int64), "total": moments.total, "outer": moments.outer}
        self.store.put_if_changed(key, npzio.dumps(arrays, {"classes": len(class_ids), "k": self.k}))
        return moments
