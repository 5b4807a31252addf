"""The prompter worker over a real Kafka broker: submissions in, keyed generation jobs out."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import pytest

from synscale.config import Topics
from synscale.ids import job_id
from synscale.runtime import ServiceContext
from synscale.store.file import FileStore
from synscale.study import parse_study
from synscale.v1 import common_pb2, generator_pb2, study_pb2
from synscale_prompter.worker import subscriptions

from .harness import consume

pytestmark = pytest.mark.infra

STUDY = """
name: prompter-kafka
classes: {set: imagenet, ids: [n01440764, n07753592]}
generators: [{name: g, cfg: [1.5, 4.0]}]
strategies: [classname_hypernym, clip_templates]
images_per_class: [20, 50]
"""
SHARD = 16
CHUNKS = [(0, 16), (16, 16), (32, 16), (48, 2)]
EXPECTED = 2 * 2 * 2 * len(CHUNKS)  # cfg x strategy x class x chunk


def topic_size(bus, topic: str) -> int:  # type: ignore[no-untyped-def]
    """Messages in a topic, from the broker's end offsets (no consumer group involved)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bus.bootstrap_servers)
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return int(sum(consumer.end_offsets(parts).values()))
    finally:
        consumer.close()


def test_worker_over_kafka_emits_keyed_jobs_and_dead_letters_poison(
        kafka_bus, unique: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SYNSCALE_SHARD_SIZE", str(SHARD))
    topics = Topics(prefix=f"prompter-{unique}", default_partitions=6)
    for logical in ("study-submissions", "generation-jobs", "study-events"):
        kafka_bus.ensure_topic(topics.name(logical), 6)
    ctx = ServiceContext(kafka_bus, FileStore(tmp_path / "store", "synscale"), topics)
    spec = parse_study(STUDY)
    submissions = topics.name("study-submissions")
    for text in ("name: [broken", STUDY):
        kafka_bus.publish(submissions, study_pb2.StudySubmission(spec_yaml=text).SerializeToString(),
                          key=spec.study_id)
    kafka_bus.flush()

    (sub,) = subscriptions(ctx)
    worker = kafka_bus.subscribe([topics.name(t) for t in sub.topics], sub.group, sub.handler,
                                 retry=sub.retry)
    try:
        handled = 0
        deadline = time.monotonic() + 90
        while handled < 2 and time.monotonic() < deadline:
            handled += worker.run(max_messages=2 - handled, idle_timeout_s=3)
        assert handled == 2
    finally:
        worker.close()

    assert topic_size(kafka_bus, topics.name("generation-jobs")) == EXPECTED
    jobs = consume(kafka_bus, topics.name("generation-jobs"), f"check-{unique}", EXPECTED)
    expected_keys = {
        job_id({"study_id": spec.study_id, "generator": "g", "cfg": cfg, "strategy": s, "class_id": c,
                "seed_start": start, "seed_count": count}).encode()
        for cfg, s, c, (start, count) in itertools.product(
            [1.5, 4.0], ["classname_hypernym", "clip_templates"], ["n01440764", "n07753592"], CHUNKS)
    }
    assert len(jobs) == EXPECTED
    assert {m.key for m in jobs} == expected_keys
    assert len({m.partition for m in jobs}) > 1  # keys spread over partitions
    decoded = [generator_pb2.GenerationJob.FromString(m.value) for m in jobs]
    tench = next(j for j in decoded if j.job.class_id == "n01440764"
                 and j.job.cell.strategy == "classname_hypernym")
    assert {p.text for p in tench.prompts} == {"tench, cyprinid"}
    assert sum(j.job.seed_count for j in decoded) == 50 * 8

    (letter,) = consume(kafka_bus, submissions + ".dlq", f"dlq-{unique}", 1)
    dead = common_pb2.DeadLetter.FromString(letter.value)
    assert "not valid YAML" in dead.error and dead.attempts == 1
    (event,) = consume(kafka_bus, topics.name("study-events"), f"ev-{unique}", 1)
    assert study_pb2.StudyEvent.FromString(event.value).total == EXPECTED
