"""CAS (train on synthetic, test on real): the metric is exactly a by-hand run of the recipe,
and the scorer's streaming path reports the same number for a cell."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from synscale.datasets import fashion_mnist
from synscale_scorer.aggregate import CellAggregator
from synscale_scorer.cas import CasRecipe, classification_accuracy_score, for_classes, wilson
from synscale_scorer.reference.embedded import FashionCNN
from synscale_scorer.report import CellScores
from synscale_scorer.scoring import Networks, PartialBuilder, score_shard_bytes

from .conftest import make_shard, real_images, tiny_plan

RECIPE = CasRecipe(epochs=4, min_steps=12, max_steps=12, batch_size=32, seed=5)


def _fixture() -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """'Synthetic' = 20 real training images per class; 'real test' = 300 test images."""
    train = fashion_mnist.load("train")
    idx = np.concatenate([ix[:20] for ix in train.per_class_indices()])
    test = fashion_mnist.load("test")
    real_test = (test.images[:300], test.labels[:300])
    return np.asarray(train.images[idx]), np.asarray(train.labels[idx]), real_test


def _by_hand(images: np.ndarray, labels: np.ndarray, test: tuple[np.ndarray, np.ndarray]) -> float:
    """The recipe written out: seeded init, AdamW + one-cycle, flips, 12 steps; then accuracy."""
    torch.manual_seed(RECIPE.seed)
    gen = torch.Generator().manual_seed(RECIPE.seed)
    x_all = torch.from_numpy(images.copy()).float().div(255.0).unsqueeze(1)
    y_all = torch.from_numpy(labels.astype(np.int64))
    model = FashionCNN()
    opt = torch.optim.AdamW(model.parameters(), lr=RECIPE.lr, weight_decay=RECIPE.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=RECIPE.lr, total_steps=12)
    model.train()
    steps = 0
    while steps < 12:
        order = torch.randperm(len(y_all), generator=gen)
        for i in range(0, len(y_all), 32):
            if steps == 12:
                break
            idx = order[i : i + 32]
            flip = torch.rand(len(idx), generator=gen) < 0.5
            x = torch.where(flip[:, None, None, None], x_all[idx].flip(-1), x_all[idx])
            loss = nn.functional.cross_entropy(model(x), y_all[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            steps += 1
    model.eval()
    with torch.no_grad():
        pred = model(torch.from_numpy(np.array(test[0])).float().div(255.0).unsqueeze(1)).argmax(1).numpy()
    return float((pred == test[1]).mean())


def test_cas_equals_a_by_hand_train_on_synthetic_test_on_real_run() -> None:
    images, labels, test = _fixture()
    result = classification_accuracy_score(images, labels, RECIPE, test=test)
    assert result.accuracy == _by_hand(images, labels, test)
    assert result.n_train == 200 and result.n_test == 300 and result.steps == 12
    assert result.low < result.accuracy < result.high
    assert result.accuracy > 0.3  # 12 steps on 200 real images already beat chance (0.1) by far


def test_wilson_interval() -> None:
    low, high = wilson(90, 100)
    assert abs(low - 0.8256) < 1e-3 and abs(high - 0.9448) < 1e-3  # textbook values
    assert wilson(0, 10)[0] == 0.0 and all(math.isnan(v) for v in wilson(0, 0))


def test_recipe_steps_rule() -> None:
    r = CasRecipe()
    assert r.steps(640) == r.min_steps and r.steps(3000) == math.ceil(r.epochs * 3000 / r.batch_size)
    assert r.steps(10**7) == r.max_steps


def test_cas_is_skipped_with_a_note_for_classes_outside_fashion_mnist() -> None:
    result, note = for_classes({"n01440764": {0: np.zeros((1, 32, 32), np.uint8)}}, ["n01440764"])
    assert result is None and "n01440764" in note


def test_a_cell_scored_through_shards_reports_the_same_cas() -> None:
    """Shards → partials (the retained images) → aggregate: CAS of the cell's images,
    restricted to its classes, identical to calling the metric on those images."""
    classes = ("tshirt", "trouser", "sandal")
    plan = tiny_plan(classes, n=8, cas=True, cas_max_steps=12, recognizability=False, diversity=False,
                     fid=False, lpips=False, cas_per_class=6)
    agg = CellAggregator(plan)
    per_class = {}
    for cid in classes:
        images = real_images(cid, 8, offset=40)
        shard = make_shard(plan.study_id, plan.cell, cid, 0, images)
        partial = score_shard_bytes(plan, Networks(), shard, f"{cid}.tar")
        agg.add(partial)
        per_class[cid] = images[:6]  # cas_per_class: indices 0..5
    scores = agg.finish()

    images = np.stack([im for cid in classes for im in per_class[cid]])
    labels = np.repeat([fashion_mnist.CLASS_IDS.index(c) for c in classes], 6)
    recipe = CasRecipe(min_steps=12, max_steps=12)
    want = classification_accuracy_score(images, labels, recipe, classes=sorted(labels.tolist()))
    assert scores.cas == want.accuracy and scores.cas_n == 18
    assert (scores.cas_low, scores.cas_high) == (want.low, want.high)
    assert want.n_test == 3000  # the real test images of the three classes
    back = CellScores.from_json(scores.to_json())
    assert back.cas == scores.cas
    assert scores.to_proto().cas == scores.cas


def test_cas_off_by_default_leaves_nan() -> None:
    plan = tiny_plan(("tshirt",), n=2, recognizability=False, diversity=False, fid=False, lpips=False)
    builder = PartialBuilder(plan, Networks(), "s")
    assert not builder.use_cas
    agg = CellAggregator(plan)
    agg.add(score_shard_bytes(plan, Networks(), make_shard(plan.study_id, plan.cell, "tshirt", 0,
                                                              real_images("tshirt", 2)), "s.tar"))
    scores = agg.finish()
    assert math.isnan(scores.cas) and scores.cas_n == 0
