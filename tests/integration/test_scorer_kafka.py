"""The scorer worker over real Kafka and MinIO: shard-ready events in, one ScoreResult out,
partials and outputs in the bucket; a duplicate event publishes nothing new."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from synscale import ids, layout
from synscale.bus.base import Message
from synscale.config import Topics
from synscale.datasets import fashion_mnist
from synscale.runtime import ServiceContext
from synscale.shards import Sample, encode_png, write_shard
from synscale.store.minio import MinioStore
from synscale.study import parse_study
from synscale.v1 import common_pb2, generator_pb2, scorer_pb2
from synscale_scorer.plan import Cell
from synscale_scorer.service import NetworkCache, ScorerService, study_key
from synscale_scorer.worker import GROUP, ShardReadyHandler

pytestmark = [pytest.mark.infra, pytest.mark.slow]

STUDY = """
name: kafka-scorer
generators: [{name: embedded, backend: embedded, resolution: 32, cfg: [2.0]}]
strategies: [classname]
images_per_class: [4]
classes: {set: fashion-mnist, ids: [trouser, bag]}
scoring: {lpips_pairs: 3, fid_samples_per_class: 4}
"""
CELL = Cell("embedded", 2.0, "classname")


class PooledFeatures(torch.nn.Module):
    """A cheap 8-d stand-in for Inception (the real one is covered by unit tests)."""

    num_features = 8
    extractor_id = "pooled-test-features"

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float().mean(1, keepdim=True) / 255.0
        return torch.nn.functional.adaptive_avg_pool2d(x, (2, 4)).flatten(1)


def _shard_event(store: MinioStore, study: str, class_id: str, start: int, count: int) -> bytes:
    split = fashion_mnist.load("test")
    idx = split.per_class_indices()[fashion_mnist.CLASS_IDS.index(class_id)]
    samples = [Sample(ids.sample_key(class_id, i), encode_png(split.images[idx[i]]),
                      {"class_id": class_id, "index": i, "study_id": study})
               for i in range(start, start + count)]
    data = write_shard(samples)
    key = layout.shard_key(study, CELL.generator, CELL.cfg, CELL.strategy, class_id, start, count)
    info = store.put(key, data)
    job = common_pb2.JobIdentity(study_id=study, cell=CELL.proto(), class_id=class_id,
                                 seed_start=start, seed_count=count)
    return generator_pb2.ShardReady(shard=common_pb2.ShardRef(
        bucket=store.bucket, key=key, sha256=info.sha256, count=count, job=job)).SerializeToString()


def _run(worker, count: int) -> int:  # type: ignore[no-untyped-def]
    handled, deadline = 0, time.monotonic() + 120
    while handled < count and time.monotonic() < deadline:
        handled += worker.run(max_messages=count - handled, idle_timeout_s=3)
    return handled


def test_shard_events_over_kafka_and_minio(kafka_bus, infra_env: dict[str, str], unique: str) -> None:  # type: ignore[no-untyped-def]
    torch.set_num_threads(1)
    store = MinioStore(infra_env["S3_ENDPOINT"], infra_env["S3_ACCESS_KEY"], infra_env["S3_SECRET_KEY"],
                       f"test-scorer-{unique}")
    study = parse_study(STUDY).study_id
    store.put(study_key(study), STUDY.encode())
    topics = Topics(prefix=f"scorer-{unique}", default_partitions=2)
    for logical in ("shards-ready", "scores"):
        kafka_bus.ensure_topic(topics.name(logical), 2)
    ctx = ServiceContext(kafka_bus, store, topics)
    service = ScorerService(store, NetworkCache(env={}, preloaded={"inception": PooledFeatures()}), env={})
    events = [_shard_event(store, study, c, s, 2) for c in ("trouser", "bag") for s in (0, 2)]
    for value in [*events, events[0]]:  # the last one is a redelivery
        kafka_bus.publish(topics.name("shards-ready"), value, key=b"cell")
    kafka_bus.flush()

    handler = ShardReadyHandler(ctx, service)
    worker = kafka_bus.subscribe([topics.name("shards-ready")], GROUP, handler)
    try:
        assert _run(worker, 5) == 5
    finally:
        worker.close()

    got: list[Message] = []
    reader = kafka_bus.subscribe([topics.name("scores")], f"check-{unique}", got.append)
    try:
        reader.run(idle_timeout_s=5)
    finally:
        reader.close()
    assert len(got) == 1 and handler.published == 1
    result = scorer_pb2.ScoreResult.FromString(got[0].value)
    assert result.study_id == study and result.scored == 8 and result.skipped == 0
    assert [c.class_id for c in result.classes] == ["trouser", "bag"]
    assert result.macro_f1 > 0.8  # real images, committed reference
    assert np.isfinite(result.fid) and result.lpips > 0
    prefix = layout.score_key(study, CELL.generator, CELL.cfg, CELL.strategy, "x")[:-1]
    names = sorted(o.key[len(prefix):] for o in store.list(prefix))
    assert names == ["partials/bag-000000000-000002.npz", "partials/bag-000000002-000002.npz",
                     "partials/trouser-000000000-000002.npz", "partials/trouser-000000002-000002.npz",
                     "published.json", "scores.json", "table.csv"]
    assert store.get(result.table_key).decode().startswith("class,n,precision,recall,f1")
