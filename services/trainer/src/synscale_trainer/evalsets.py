"""Evaluation sets: Fashion-MNIST test and its OOD suite; ImageNet val/V2/Sketch/A/R folders.

The embedded OOD suite is made from the 10,000 Fashion-MNIST test images, each set a
fixed, documented shift (docs/trainer.md), all deterministic. The default suite is
`ood.SHIFTS` (rotation, scale, translation, blur, contrast, elastic, edge-sketch),
calibrated so the real-trained reference keeps 40–75% accuracy (see `ood.py`). The first
suite's sets stay loadable by name for studies that list them (`LEGACY_OOD`), but are
not defaults: inverted and noise put small classifiers at chance, and `sketch` is now
`ood.edge_sketch` without shading (the first version mixed neighbouring images).

- inverted : 255 - x (polarity flip: the object turns dark on a white ground);
- rotated  : rotated by +30 degrees (even test index) / -30 (odd), bilinear, black fill;
- sketch   : Sobel edge magnitude scaled to 0..255 per image (an edge-map "sketch"),
             the same images as the default suite's edge-sketch;
- noise    : additive Gaussian noise, sigma 80 grey levels (seeded per test index), clipped;
- rescaled : the image shrunk to 16x16 and centred on a black 32x32 canvas.

ImageNet suites are read from local ImageFolder-layout directories (WordNet-id folders;
ImageNet-V2's numeric folders are accepted). ImageNet-A and -R cover 200 classes: their
folders must belong to timm's published 200-wnid lists and the model's 1000-way logits are
restricted to the classes present (the protocol of those papers).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from synscale.datasets import fashion_mnist
from synscale.errors import InvalidInput, PreconditionFailed
from synscale_trainer import classes as classsets
from synscale_trainer import ood
from synscale_trainer.classes import ClassSet
from synscale_trainer.evalcache import CACHE, EvalKey, Tensors, indices_digest
from synscale_trainer.plan import image_folder
from synscale_trainer.transforms import BILINEAR, Preprocess

FASHION_ID = "fashion-mnist-test"
OOD_NAMES = tuple(ood.SHIFTS)  # the default suite (EvaluationSpec.ood)
LEGACY_OOD = ("inverted", "rotated", "sketch", "noise", "rescaled")
IMAGENET_SETS = ("imagenet-val", "imagenet-v2", "imagenet-sketch", "imagenet-a", "imagenet-r")
ROTATION_DEG = 30.0
NOISE_SIGMA = 80.0
RESCALED_SIZE = 16
NOISE_SEED = 0
EVAL_DIR_ENV = "SYNSCALE_EVAL_DIR"  # folder holding <set name>/ sub-folders
BUILD_CHUNK = 2048  # images normalised per step while a set is built (bounds the uint8 copy)
FOLDER_PREFIX = "folder:"  # `folder:<name>`: an ImageFolder of the run's own class ids (any class set)


# -- the embedded OOD suite --------------------------------------------------------------
# Each transform maps (images, their indices in the test set) to shifted images; every
# random or alternating choice depends on the test index alone, so a strided subset
# (eval_limit) holds exactly the images the full set holds at those indices.
def invert(images: np.ndarray, indices: np.ndarray) -> np.ndarray:
    return (255 - images).astype(np.uint8)


def rotate(images: np.ndarray, indices: np.ndarray, degrees: float = ROTATION_DEG) -> np.ndarray:
    out = np.empty_like(images)
    for i, (img, index) in enumerate(zip(images, indices, strict=True)):
        angle = degrees if int(index) % 2 == 0 else -degrees
        out[i] = np.asarray(Image.fromarray(img).rotate(angle, resample=BILINEAR, fillcolor=0))
    return out


def sketch(images: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """The Sobel outline alone (`ood.edge_sketch` with no shading)."""
    return ood.edge_sketch(images, indices, fill=0.0)


def noise(images: np.ndarray, indices: np.ndarray, sigma: float = NOISE_SIGMA) -> np.ndarray:
    out = np.empty_like(images)
    for i, (img, index) in enumerate(zip(images, indices, strict=True)):
        rng = np.random.default_rng((NOISE_SEED, int(index)))
        noisy = img.astype(np.float32) + rng.normal(0.0, sigma, size=img.shape).astype(np.float32)
        out[i] = np.clip(np.round(noisy), 0, 255).astype(np.uint8)
    return out


def rescale(images: np.ndarray, indices: np.ndarray, size: int = RESCALED_SIZE) -> np.ndarray:
    """Shrunk to `size` x `size` and centred: `ood.scale` at the matching factor."""
    return ood.scale(images, indices, factor=size / images.shape[1])


OOD_TRANSFORMS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    **ood.SHIFTS,
    "inverted": invert,
    "rotated": rotate,
    "sketch": sketch,
    "noise": noise,
    "rescaled": rescale,
}


def severity(name: str) -> dict[str, float]:
    """The set's shift parameters now (empty for the ID set and parameterless shifts)."""
    if name in ood.SHIFTS:
        return ood.severity(name)
    legacy: dict[str, dict[str, float]] = {
        "rotated": {"degrees": ROTATION_DEG}, "noise": {"sigma": NOISE_SIGMA},
        "rescaled": {"size": RESCALED_SIZE},
    }
    return legacy.get(name, {})


def shift_seed(name: str) -> int:
    """The seed a set's random choices derive from (-1: the set draws nothing at random)."""
    if name in ("rotation", "translation", "elastic"):
        return ood.OOD_SEED
    return NOISE_SEED if name == "noise" else -1


def fashion_set(name: str, indices: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 n x 32 x 32, labels) of the ID test set or one OOD set.

    `indices` picks test images (default: all 10,000). The shift runs at `severity(name)`.
    """
    test = fashion_mnist.load("test")
    if indices is None:
        indices = np.arange(len(test))
    if name == FASHION_ID:
        return test.images[indices], test.labels[indices]
    if name not in OOD_TRANSFORMS:
        raise InvalidInput("eval_sets", f"unknown Fashion-MNIST eval set {name!r}")
    shifted = OOD_TRANSFORMS[name](np.asarray(test.images[indices]), indices, **severity(name))  # type: ignore[call-arg]
    return shifted, test.labels[indices]


def eval_key(name: str, indices: np.ndarray, preprocess: Preprocess) -> EvalKey:
    """The evaluation cache's key of one Fashion-MNIST set (see `evalcache`)."""
    return EvalKey(name, tuple(sorted(severity(name).items())), shift_seed(name),
                   indices_digest(indices), preprocess)


def fashion_tensors(name: str, indices: np.ndarray, preprocess: Preprocess,
                    labels: np.ndarray | None = None) -> Tensors:
    """The set's preprocessed images and labels, built once per process (`evalcache.CACHE`).

    `labels` replaces the test labels (a class subset relabels them into the run's space).
    """
    def build() -> Tensors:
        images, own = fashion_set(name, indices)
        out = labels if labels is not None else own
        chunks = range(0, len(images), BUILD_CHUNK)
        x = torch.cat([preprocess.batch(images[i : i + BUILD_CHUNK]) for i in chunks])
        return x.contiguous(), torch.as_tensor(np.asarray(out, dtype=np.int64))

    return CACHE.get(eval_key(name, indices, preprocess), build)


# -- the common interface ----------------------------------------------------------------
@dataclass
class EvalSet:
    """Images with labels in the model's label space; `subset` restricts the logits."""

    name: str
    n: int
    subset: tuple[int, ...] | None
    _batches: Callable[[Preprocess, int], Iterator[tuple[torch.Tensor, torch.Tensor]]]

    def batches(self, preprocess: Preprocess, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return self._batches(preprocess, batch_size)


def _limit_indices(n: int, limit: int) -> np.ndarray:
    """Evenly strided subset of size `limit` (deterministic, keeps class mix)."""
    if limit <= 0 or limit >= n:
        return np.arange(n)
    return np.linspace(0, n - 1, limit).round().astype(np.int64)


def _array_set(name: str, limit: int, classes: ClassSet) -> EvalSet:
    test = fashion_mnist.load("test")
    labels: np.ndarray | None = None
    if classes.restricted:  # only the run's classes, relabelled into its label space
        full = [classes.full_ids.index(c) for c in classes.ids]
        pool = np.flatnonzero(np.isin(test.labels, full))
        indices = pool[_limit_indices(len(pool), limit)]
        remap = np.full(len(classes.full_ids), -1, dtype=np.int64)
        remap[full] = np.arange(len(full))
        labels = remap[test.labels[indices]]
    else:
        indices = _limit_indices(len(test), limit)

    def batches(pre: Preprocess, bs: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        x, y = fashion_tensors(name, indices, pre, labels)
        for i in range(0, len(y), bs):
            yield x[i : i + bs], y[i : i + bs]

    return EvalSet(name, len(indices), None, batches)


def _folder_set(name: str, root: Path, classes: ClassSet, limit: int, workers: int) -> EvalSet:
    known: frozenset[str] | None = None
    if name in ("imagenet-a", "imagenet-r"):
        known = classsets.imagenet_subset(name[-1])
    files = image_folder(root, classes, field=f"eval_paths[{name}]", known=known)
    index = classes.id_to_index
    items = [(p, index[cid]) for cid in sorted(files) for p in files[cid]]
    keep = _limit_indices(len(items), limit)
    items = [items[i] for i in keep]
    present = sorted({label for _, label in items})
    subset = tuple(present) if len(present) < len(classes) else None

    def batches(pre: Preprocess, bs: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        ds = _FileDataset(items, pre)
        loader = torch.utils.data.DataLoader(ds, batch_size=bs, num_workers=workers)
        yield from loader

    return EvalSet(name, len(items), subset, batches)


class _FileDataset(torch.utils.data.Dataset):  # type: ignore[type-arg]
    def __init__(self, items: list[tuple[Path, int]], pre: Preprocess) -> None:
        self.items, self.pre = items, pre

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        path, label = self.items[i]
        with Image.open(path) as im:
            return self.pre(im.convert("RGB")), label


def default_eval_sets(classes: ClassSet) -> list[str]:
    return [FASHION_ID, *OOD_NAMES] if classes.name == "fashion-mnist" else ["imagenet-val"]


def resolve_eval_sets(
    names: Sequence[str],
    classes: ClassSet,
    paths: Mapping[str, str],
    *,
    limit: int = 0,
    workers: int = 0,
) -> list[EvalSet]:
    """Check and open every requested set (folders are listed, images not yet read)."""
    names = list(names) or default_eval_sets(classes)
    if len(set(names)) != len(names):
        raise InvalidInput("eval_sets", f"duplicate names in {names}")
    out = []
    for name in names:
        if name == FASHION_ID or name in OOD_TRANSFORMS:
            if classes.name != "fashion-mnist":
                raise InvalidInput(
                    "eval_sets", f"{name!r} is a Fashion-MNIST set; the run's classes are {classes.name}"
                )
            out.append(_array_set(name, limit, classes))
        elif name in IMAGENET_SETS:
            if classes.name != "imagenet":
                raise InvalidInput(
                    "eval_sets", f"{name!r} is an ImageNet set; the run's classes are {classes.name}"
                )
            out.append(_folder_set(name, _eval_root(name, paths), classes, limit, workers))
        elif name.startswith(FOLDER_PREFIX) and name != FOLDER_PREFIX:
            # a custom class list's own test set: folders named by its class ids
            root = _eval_root(name, paths, name.removeprefix(FOLDER_PREFIX))
            out.append(_folder_set(name, root, classes, limit, workers))
        else:
            known = [FASHION_ID, *OOD_TRANSFORMS, *IMAGENET_SETS, f"{FOLDER_PREFIX}<name>"]
            raise InvalidInput("eval_sets", f"unknown eval set {name!r}; known: {', '.join(known)}")
    return out


def _eval_root(name: str, paths: Mapping[str, str], folder: str = "") -> Path:
    folder = folder or name
    if paths.get(name):
        return Path(paths[name])
    base = os.environ.get(EVAL_DIR_ENV, "")
    if base and (Path(base) / folder).is_dir():
        return Path(base) / folder
    raise PreconditionFailed(
        f"eval_paths[{name}]: no local folder for {name}; set it in the job's eval_paths or put it at "
        f"${EVAL_DIR_ENV}/{folder}"
    )
