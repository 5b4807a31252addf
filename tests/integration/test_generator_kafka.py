"""The generator worker over real Kafka and MinIO: shards land, redeliveries re-announce,
poison is dead-lettered."""

from __future__ import annotations

import time

import pytest

from synscale.bus.base import dead_letter_topic
from synscale.config import Topics
from synscale.runtime import ServiceContext
from synscale.shards import iter_shard
from synscale.store.minio import MinioStore
from synscale.v1 import common_pb2, generator_pb2, study_pb2
from synscale_generator.embedded.testing import register_tiny
from synscale_generator.output import make_job
from synscale_generator.worker import subscriptions

from .harness import consume

pytestmark = pytest.mark.infra


class CountingMinio(MinioStore):
    """The real MinIO store, counting object writes (to prove a redelivery writes nothing)."""

    puts = 0

    def put(self, key, data, **kw):  # type: ignore[no-untyped-def,override]
        self.puts += 1
        return super().put(key, data, **kw)


def test_generation_jobs_over_kafka_and_minio(  # type: ignore[no-untyped-def]
    kafka_bus, infra_env: dict[str, str], unique: str,
) -> None:
    register_tiny("standin")
    store = CountingMinio(infra_env["S3_ENDPOINT"], infra_env["S3_ACCESS_KEY"], infra_env["S3_SECRET_KEY"],
                          f"test-gen-{unique}")
    topics = Topics(prefix=f"gen-{unique}", default_partitions=3)
    for logical in ("generation-jobs", "shards-ready"):
        kafka_bus.ensure_topic(topics.name(logical), 3)
    ctx = ServiceContext(kafka_bus, store, topics)
    spec = study_pb2.GeneratorSpec(name="g", backend="standin", steps=2, batch_size=4)
    job = make_job("kafka-study", spec, 2.0, "classname", "bag", ["a bag", "a photo of a bag", "bag"],
                   class_index=8, bucket=store.bucket)
    poison = make_job("kafka-study", study_pb2.GeneratorSpec(name="g", backend="standin", resolution=30),
                      2.0, "classname", "coat", ["coat"])
    jobs_topic = topics.name("generation-jobs")
    # the same job twice (a redelivery), a malformed one in between, garbage bytes
    for value in (job.SerializeToString(), poison.SerializeToString(), b"\xff\x01",
                  job.SerializeToString()):
        kafka_bus.publish(jobs_topic, value, key=b"job-key")
    kafka_bus.flush()

    (sub,) = subscriptions(ctx)
    assert sub.options.max_poll_records == 1
    worker = kafka_bus.subscribe([topics.name(t) for t in sub.topics], sub.group, sub.handler,
                                 retry=sub.retry, options=sub.options)
    try:
        handled, deadline = 0, time.monotonic() + 120
        while handled < 4 and time.monotonic() < deadline:
            handled += worker.run(max_messages=4 - handled, idle_timeout_s=3)
    finally:
        worker.close()
    assert handled == 4

    ready = [generator_pb2.ShardReady.FromString(m.value)
             for m in consume(kafka_bus, topics.name("shards-ready"), f"check-{unique}", 2)]
    assert [r.reannounced for r in ready] == [False, True]
    assert ready[0].shard == ready[1].shard
    ref = ready[0].shard
    assert (ref.bucket, ref.count, ref.job.class_id) == (store.bucket, 3, "bag")
    assert store.puts == 1, "the redelivered job rewrote its shard"
    info = store.stat(ref.key)
    assert info is not None and info.sha256 == ref.sha256
    samples = list(iter_shard(store.get(ref.key)))
    assert [s.meta["prompt"] for s in samples] == ["a bag", "a photo of a bag", "bag"]

    letters = [common_pb2.DeadLetter.FromString(m.value)
               for m in consume(kafka_bus, dead_letter_topic(jobs_topic), f"dlq-{unique}", 2)]
    reasons = sorted(letter.error for letter in letters)
    assert len(reasons) == 2
    assert "generator.resolution" in reasons[0] and "InvalidInput" in reasons[0]
    assert "not a synscale.v1.GenerationJob" in reasons[1]
