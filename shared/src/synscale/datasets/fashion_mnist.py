"""Fashion-MNIST from Debian's `dataset-fashion-mnist` (or a folder of the same files).

Every embedded-default component works on 32x32 greyscale: the 28x28 originals are
padded with 2 black pixels per side so that the T2I model (which works on 32x32 for its
space-to-depth layout), the reference classifier, and the trainer all see one format.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from synscale.errors import PreconditionFailed

DEFAULT_DIRS = (
    "/usr/share/datasets/fashion-mnist",
    "~/.cache/synscale/fashion-mnist",
)
IMAGE_SIZE = 32
PAD = (IMAGE_SIZE - 28) // 2

# (id, name) in label order. Ids are key-safe slugs; names are what prompts say.
CLASSES: tuple[tuple[str, str], ...] = (
    ("tshirt", "T-shirt"),
    ("trouser", "trouser"),
    ("pullover", "pullover"),
    ("dress", "dress"),
    ("coat", "coat"),
    ("sandal", "sandal"),
    ("shirt", "shirt"),
    ("sneaker", "sneaker"),
    ("bag", "bag"),
    ("ankle-boot", "ankle boot"),
)
CLASS_IDS = tuple(c[0] for c in CLASSES)
CLASS_NAMES = tuple(c[1] for c in CLASSES)


@dataclass(frozen=True)
class Split:
    images: np.ndarray  # uint8, (N, 32, 32)
    labels: np.ndarray  # int64, (N,)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def per_class_indices(self) -> list[np.ndarray]:
        """Indices of each class in dataset order (the fixed order nested subsets use)."""
        return [np.flatnonzero(self.labels == c) for c in range(len(CLASSES))]


def find_dir() -> Path:
    candidates = [os.environ.get("SYNSCALE_FASHION_MNIST_DIR", ""), *DEFAULT_DIRS]
    for c in candidates:
        if c and (Path(c).expanduser() / "train-images-idx3-ubyte.gz").exists():
            return Path(c).expanduser()
    raise PreconditionFailed(
        "Fashion-MNIST not found; install Debian's dataset-fashion-mnist "
        "(apt-get install dataset-fashion-mnist) or set SYNSCALE_FASHION_MNIST_DIR "
        f"(looked in {', '.join(c for c in candidates if c)})"
    )


def _read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as fh:
        data = fh.read()
    magic = int.from_bytes(data[:4], "big")
    ndim = magic & 0xFF
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


@lru_cache(maxsize=2)
def load(split: str = "train") -> Split:
    """The split padded to 32x32; `split` is 'train' (60k) or 'test' (10k)."""
    if split not in {"train", "test"}:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    root = find_dir()
    prefix = "train" if split == "train" else "t10k"
    images = _read_idx(root / f"{prefix}-images-idx3-ubyte.gz")
    labels = _read_idx(root / f"{prefix}-labels-idx1-ubyte.gz").astype(np.int64)
    padded = np.pad(images, ((0, 0), (PAD, PAD), (PAD, PAD)))
    padded.setflags(write=False)
    labels.setflags(write=False)
    return Split(padded, labels)
