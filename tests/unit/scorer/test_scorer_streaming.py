"""Scoring never holds a whole cell: 100k images pass through with bounded live rows.

The meter counts image rows alive in memory (the batch being built or run) and rows kept
for samples or as raw feature rows; a timer would prove nothing about memory.
"""

from __future__ import annotations

import numpy as np

from synscale_scorer.aggregate import CellAggregator
from synscale_scorer.partial import ShardPartial
from synscale_scorer.scoring import Networks, PartialBuilder, StreamMeter

from .conftest import TinyFeatures, TinyReference, tiny_plan

TOTAL = 100_000


def test_100k_images_stream_with_bounded_memory() -> None:
    plan = tiny_plan(("tshirt", "trouser"), n=TOTAL // 2, batch_size=500, lpips=False,
                     fid_samples_per_class=50)
    feats = TinyFeatures()
    nets = Networks(reference=TinyReference(), inception=feats, inception_dim=feats.num_features)
    meter = StreamMeter()
    builder = PartialBuilder(plan, nets, "stream", meter=meter)
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, size=(64, 1, 8, 8), dtype=np.uint8)  # small: the test is about memory
    for i in range(TOTAL):
        cls = plan.class_ids[i % 2]
        builder.add(base[i % 64], cls, i // 2)
    partial = builder.finish()

    assert meter.images == TOTAL and partial.scored == TOTAL
    assert meter.batches == TOTAL // 500
    assert meter.peak_live <= 500  # never more than one batch of images alive
    # retained: the per-class FID samples (2 x 50) plus raw feature rows up to 2 x d
    assert meter.peak_retained <= 2 * 50 + 2 * feats.num_features + 500
    assert partial.inception_rows is None and partial.inception_moments is not None
    assert partial.inception_moments.n == TOTAL
    assert partial.inception_moments.outer.shape == (16, 16)  # O(d²), not O(N)
    assert sum(len(p.sample_index) for p in partial.classes.values()) == 100

    # and the partial survives serialisation at a size independent of N
    data = partial.to_bytes()
    assert len(data) < 200_000
    agg = CellAggregator(plan)
    agg.add(ShardPartial.from_bytes(data))
    scores = agg.finish()
    assert scores.scored == TOTAL and all(c.n == TOTAL // 2 for c in scores.classes)


def test_small_shards_keep_raw_rows_below_the_threshold() -> None:
    plan = tiny_plan(lpips=False)
    feats = TinyFeatures()
    builder = PartialBuilder(plan, Networks(inception=feats, inception_dim=16), "small")
    for i in range(10):
        builder.add(np.zeros((1, 32, 32), np.uint8), "tshirt", i % 6)
    partial = builder.finish()
    assert partial.inception_rows is not None and partial.inception_rows.shape == (10, 16)
    assert partial.inception_moments is None
