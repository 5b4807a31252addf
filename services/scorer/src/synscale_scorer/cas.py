"""Classification Accuracy Score (CAS): train on synthetic images, test on real ones.

Ravuri & Vinyals (2019) showed that a generator can look good to a real-trained classifier
(high recognizability) and still carry too little of the real distribution for a
classifier trained on its images to work on real data: CAS measures exactly what a
synthetic-data scaling study needs. Here the classifier is the embedded reference CNN
with its own training recipe (`reference.train.fit`), trained on a cell's images and
tested on the real Fashion-MNIST test split, so "the same recipe on real data" is the
direct comparison (docs/embedded-generator.md lists both).

Training length is a rule of the set size, so CAS at 64 and at 1,000 images per class are
both trained to convergence (checked in the docs): `steps = clamp(ceil(epochs * N / batch),
min_steps, max_steps)`. The interval is the Wilson score interval of the accuracy on the
n real test images (binomial: the classifier is fixed, the test images are the sample);
it does not include the variation between training seeds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch

from synscale.datasets import fashion_mnist

Z95 = 1.959963984540054


@dataclass(frozen=True)
class CasRecipe:
    """How the CAS classifier is trained (the reference recipe, sized by the set)."""

    epochs: float = 15.0
    min_steps: int = 300
    max_steps: int = 1500
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 1e-4
    seed: int = 0

    def steps(self, n_images: int) -> int:
        wanted = math.ceil(self.epochs * n_images / self.batch_size)
        return int(min(self.max_steps, max(self.min_steps, wanted)))


@dataclass(frozen=True)
class CasResult:
    accuracy: float
    low: float  # Wilson 95% interval on the real test set
    high: float
    n_train: int
    n_test: int
    steps: int
    per_class: tuple[float, ...]  # recall of each class on the real test set

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def wilson(correct: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion (nan, nan) for n = 0."""
    if n <= 0:
        return math.nan, math.nan
    p = correct / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def to_grey32(images: np.ndarray) -> np.ndarray:
    """uint8 (N, H, W) or (N, C, H, W) → (N, 32, 32) greyscale, the reference's format."""
    from synscale_scorer.reference.base import to_unit_range

    x = torch.from_numpy(np.ascontiguousarray(images))
    if x.ndim == 3:
        x = x.unsqueeze(1)
    unit = to_unit_range(x, channels=1, size=fashion_mnist.IMAGE_SIZE)
    return np.asarray(torch.round(unit[:, 0] * 255.0).clamp(0, 255).to(torch.uint8))


def train_classifier(
    images: np.ndarray, labels: np.ndarray, recipe: CasRecipe = CasRecipe()
) -> torch.nn.Module:
    """The reference CNN trained on (images, labels) with the CAS recipe (deterministic per seed)."""
    from synscale_scorer.reference.train import fit

    torch.manual_seed(recipe.seed)
    gen = torch.Generator().manual_seed(recipe.seed)
    return fit(
        to_grey32(images), labels, steps=recipe.steps(len(labels)), batch_size=recipe.batch_size,
        lr=recipe.lr, weight_decay=recipe.weight_decay, generator=gen,
    )


def classification_accuracy_score(
    images: np.ndarray,
    labels: np.ndarray,
    recipe: CasRecipe = CasRecipe(),
    test: tuple[np.ndarray, np.ndarray] | None = None,
    classes: Sequence[int] | None = None,
) -> CasResult:
    """CAS of a labelled synthetic set: train on it, report accuracy on the real test set.

    `labels` index the Fashion-MNIST classes (0..9); `test` defaults to the full real
    test split (10,000 images). With `classes` (a study on some of the classes) only the
    test images of those classes count and the prediction is the best of their logits.
    """
    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) == 0 or len(labels) != len(images):
        raise ValueError(f"CAS needs as many labels as images (got {len(labels)} for {len(images)})")
    if test is None:
        split = fashion_mnist.load("test")
        test = (split.images, split.labels)
    truth = np.asarray(test[1], dtype=np.int64)
    test_images = np.asarray(test[0])
    columns = list(range(len(fashion_mnist.CLASSES))) if classes is None else sorted(classes)
    keep = np.isin(truth, columns)
    test_images, truth = test_images[keep], truth[keep]
    model = train_classifier(images, labels, recipe)
    pred = np.asarray(columns)[predict(model, test_images, columns)]
    correct = int((pred == truth).sum())
    low, high = wilson(correct, len(truth))
    per_class = tuple(
        float((pred[truth == c] == c).mean()) if (truth == c).any() else math.nan
        for c in range(len(fashion_mnist.CLASSES))
    )
    steps = recipe.steps(len(labels))
    return CasResult(correct / len(truth), low, high, len(labels), len(truth), steps, per_class)


def for_classes(
    images: Mapping[str, Mapping[int, np.ndarray]],
    class_ids: Sequence[str],
    recipe: CasRecipe = CasRecipe(),
) -> tuple[CasResult | None, str]:
    """CAS of a cell from its images by class id ({class id: {index: (C, H, W) uint8}}).

    Returns (None, why) when CAS does not apply: the test set is real Fashion-MNIST, so
    every class must be one of its ten.
    """
    unknown = [c for c in class_ids if c not in fashion_mnist.CLASS_IDS]
    if unknown:
        return None, f"CAS skipped: it tests on real Fashion-MNIST, and {unknown[0]!r} is not a class of it"
    if not images:
        return None, "CAS skipped: no images"
    stacked, labels = [], []
    for cid in class_ids:
        by_index = images.get(cid, {})
        stacked += [by_index[i] for i in sorted(by_index)]
        labels += [fashion_mnist.CLASS_IDS.index(cid)] * len(by_index)
    wanted = [fashion_mnist.CLASS_IDS.index(c) for c in class_ids]
    return classification_accuracy_score(np.stack(stacked), np.array(labels), recipe, classes=wanted), ""


@torch.no_grad()
def predict(model: torch.nn.Module, images: np.ndarray, columns: Sequence[int] | None = None,
            batch: int = 1000) -> np.ndarray:
    """Argmax over `columns` (default all) of the logits, for uint8 images of any size."""
    model.eval()
    grey = to_grey32(images)
    out = []
    for i in range(0, len(grey), batch):
        x = torch.from_numpy(np.ascontiguousarray(grey[i : i + batch])).float().div_(255.0).unsqueeze(1)
        logits = model(x)
        out.append((logits if columns is None else logits[:, list(columns)]).argmax(1).numpy())
    return np.concatenate(out) if out else np.zeros(0, np.int64)
