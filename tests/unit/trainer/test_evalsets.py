"""Evaluation sets and metrics: the embedded OOD suite, ImageNet folders, top-k/per-class."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from synscale import classes as core
from synscale.datasets import fashion_mnist
from synscale.errors import InvalidInput, PreconditionFailed
from synscale.study import EvaluationSpec
from synscale_trainer import classes, evalsets
from synscale_trainer.evaluate import evaluate
from synscale_trainer.models import arch_info


def test_ood_suite_matches_the_study_defaults_and_has_full_size() -> None:
    assert tuple(EvaluationSpec().ood) == evalsets.OOD_NAMES
    sets = evalsets.resolve_eval_sets([], core.fashion_mnist(), {})
    assert [s.name for s in sets] == ["fashion-mnist-test", *evalsets.OOD_NAMES]
    assert all(s.n == 10_000 and s.subset is None for s in sets)


def test_ood_transforms() -> None:
    idx = np.arange(0, 40)
    test = fashion_mnist.load("test")
    x = np.asarray(test.images[idx])
    inverted, labels = evalsets.fashion_set("inverted", idx)
    assert np.array_equal(inverted, 255 - x) and np.array_equal(labels, test.labels[idx])

    rotated, _ = evalsets.fashion_set("rotated", idx)
    want = np.asarray(Image.fromarray(x[1]).rotate(-30, resample=Image.Resampling.BILINEAR))
    assert np.array_equal(rotated[1], want)  # odd index: -30 degrees
    assert not np.array_equal(rotated[0], x[0])

    sketch, _ = evalsets.fashion_set("sketch", idx)
    assert sketch.max(axis=(1, 2)).tolist() == [255] * 40  # edges scaled to full range
    assert (sketch[:, 0, :] == 0).all()  # the black border has no edges

    noisy, _ = evalsets.fashion_set("noise", idx)
    diff = noisy.astype(np.float32) - x
    mid = (x > 100) & (x < 155)  # far from 0 and 255, so little clipping
    assert 60 < diff[mid].std() < 95
    assert np.array_equal(noisy[5], evalsets.fashion_set("noise", idx[5:6])[0][0])  # per-index seed

    rescaled, _ = evalsets.fashion_set("rescaled", idx)
    assert (rescaled[:, :8, :] == 0).all() and (rescaled[:, 24:, :] == 0).all()
    assert np.array_equal(
        rescaled[3, 8:24, 8:24], np.asarray(Image.fromarray(x[3]).resize((16, 16), Image.Resampling.BILINEAR))
    )


def test_eval_limit_is_a_strided_subset_of_the_full_set() -> None:
    full, _ = evalsets.fashion_set("rotated")
    (limited,) = evalsets.resolve_eval_sets(["rotated"], core.fashion_mnist(), {}, limit=50)
    assert limited.n == 50
    pre = arch_info("embedded-cnn").preprocess()
    x, _ = next(limited.batches(pre, 50))
    keep = np.linspace(0, 9999, 50).round().astype(int)
    assert torch.allclose(x, pre.batch(full[keep]))


def test_unknown_and_mismatched_eval_sets() -> None:
    with pytest.raises(InvalidInput, match="unknown eval set 'blurred'"):
        evalsets.resolve_eval_sets(["blurred"], core.fashion_mnist(), {})
    with pytest.raises(InvalidInput, match="ImageNet set"):
        evalsets.resolve_eval_sets(["imagenet-a"], core.fashion_mnist(), {})


def _folder(root: Path, wnids: list[str], per_class: int = 2) -> Path:
    for w in wnids:
        (root / w).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(np.full((40, 48, 3), 30 * i, np.uint8)).save(root / w / f"{i}.jpg")
    return root


def test_imagenet_a_is_restricted_to_its_200_classes(tmp_path: Path) -> None:
    a_wnids = sorted(classes.imagenet_subset("a"))
    assert len(a_wnids) == 200 and len(classes.imagenet_subset("r")) == 200
    root = _folder(tmp_path / "a", a_wnids[:3])
    (es,) = evalsets.resolve_eval_sets(["imagenet-a"], core.imagenet(), {"imagenet-a": str(root)})
    index = core.imagenet().id_to_index
    assert es.n == 6 and es.subset == tuple(sorted(index[w] for w in a_wnids[:3]))

    class Fixed(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            logits = torch.zeros(len(x), 1000)
            logits[:, 0] = 100.0  # a class outside the subset: must not count
            logits[:, index[a_wnids[1]]] = 1.0
            return logits

    pre = arch_info("resnet50").preprocess(32)
    m = evaluate(Fixed(), es, pre, core.imagenet(), device=torch.device("cpu"))
    assert m.n == 6 and m.top1 == pytest.approx(2 / 6) and m.top5 == 1.0
    assert dict(m.per_class) == {a_wnids[0]: 0.0, a_wnids[1]: 1.0, a_wnids[2]: 0.0}


def test_folder_with_unknown_classes_fails_before_reading_images(tmp_path: Path) -> None:
    root = _folder(tmp_path / "r", [sorted(classes.imagenet_subset("r"))[0], "n99999999", "cats"])
    with pytest.raises(
        InvalidInput, match=r"eval_paths\[imagenet-r\].*2 unknown class folder\(s\): \['cats', 'n99999999'\]"
    ):
        evalsets.resolve_eval_sets(["imagenet-r"], core.imagenet(), {"imagenet-r": str(root)})
    # a wnid of ImageNet-1k that is not one of ImageNet-A's 200 is unknown there
    outside = next(w for w in core.imagenet().ids if w not in classes.imagenet_subset("a"))
    with pytest.raises(InvalidInput, match=outside):
        evalsets.resolve_eval_sets(
            ["imagenet-a"], core.imagenet(), {"imagenet-a": str(_folder(tmp_path / "a", [outside]))}
        )


def test_imagenet_v2_numeric_folders_and_missing_paths(tmp_path: Path) -> None:
    root = _folder(tmp_path / "v2", ["0", "999"], per_class=1)
    (es,) = evalsets.resolve_eval_sets(["imagenet-v2"], core.imagenet(), {"imagenet-v2": str(root)})
    assert es.n == 2 and es.subset == (0, 999)
    with pytest.raises(PreconditionFailed, match=r"eval_paths\[imagenet-val\]"):
        evalsets.resolve_eval_sets(["imagenet-val"], core.imagenet(), {})


def test_metrics_of_a_known_classifier() -> None:
    (es,) = evalsets.resolve_eval_sets(["fashion-mnist-test"], core.fashion_mnist(), {}, limit=200)
    labels = torch.cat([y for _, y in es.batches(arch_info("embedded-cnn").preprocess(), 64)])

    class Oracle(nn.Module):
        """Right on every class but 'shirt', where it says 'T-shirt' and puts the truth 2nd."""

        def __init__(self) -> None:
            super().__init__()
            self.seen = iter(labels.split(64))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = next(self.seen)
            logits = torch.nn.functional.one_hot(y, 10).float() * 5
            shirt = y == 6
            logits[shirt, 0] = 10.0
            return logits

    m = evaluate(
        Oracle(),
        es,
        arch_info("embedded-cnn").preprocess(),
        core.fashion_mnist(),
        device=torch.device("cpu"),
        batch_size=64,
    )
    share = float((labels == 6).float().mean())
    assert m.top1 == pytest.approx(1 - share) and m.top5 == 1.0
    assert m.per_class["shirt"] == 0.0 and m.per_class["coat"] == 1.0
    assert m.loss > 0 and m.n == 200
    # Counts per class and the per-image record the analyzer's binomial fits and paired tests use.
    counts = {cid: int((labels == i).sum()) for i, cid in enumerate(core.fashion_mnist().ids)}
    assert dict(m.per_class_n) == {cid: c for cid, c in counts.items() if c}
    bits = np.unpackbits(np.frombuffer(m.correct, np.uint8))[: m.n].astype(bool)
    assert np.array_equal(bits, (labels != 6).numpy())


def test_restricted_classes_evaluate_only_their_images() -> None:
    subset = core.fashion_mnist().select(["ankle-boot", "trouser"])
    (es,) = evalsets.resolve_eval_sets(["inverted"], subset, {}, limit=60)
    _, y = next(es.batches(arch_info("embedded-cnn").preprocess(), 100))
    assert es.n == 60 and set(y.tolist()) == {0, 1} and es.subset is None
    (full,) = evalsets.resolve_eval_sets(["fashion-mnist-test"], subset, {})
    assert full.n == 2000


def test_restricted_imagenet_skips_other_known_classes(tmp_path: Path) -> None:
    ids = core.imagenet().ids
    subset = core.imagenet().select([ids[5], ids[2]])
    root = _folder(tmp_path / "val", [ids[2], ids[5], ids[7]])  # ids[7] is ImageNet but not the run's
    (es,) = evalsets.resolve_eval_sets(["imagenet-val"], subset, {"imagenet-val": str(root)})
    assert es.n == 4 and es.subset is None  # both run classes present: no logit restriction


def test_a_custom_class_list_evaluates_on_its_own_folder(tmp_path: Path) -> None:
    """`folder:<name>`: an ImageFolder named by the custom list's ids, for any class set."""
    custom = core.custom_from_entries([{"id": "zebra", "name": "zebra"}, {"id": "apple", "name": "apple"}])
    root = _folder(tmp_path / "mine", ["apple", "zebra"])
    (es,) = evalsets.resolve_eval_sets(["folder:mine"], custom, {"folder:mine": str(root)})
    _, y = next(es.batches(arch_info("timm/resnet10t").preprocess(32), 100))
    assert es.n == 4 and sorted(y.tolist()) == [0, 0, 1, 1]
    with pytest.raises(InvalidInput, match="is an ImageNet set; the run's classes are custom"):
        evalsets.resolve_eval_sets(["imagenet-val"], custom, {"imagenet-val": str(root)})
