"""The trainer worker over real Kafka and MinIO: a TrainingJob in, a RunResult out.

Shards are read from MinIO through the prefetcher and the shard cache by loader worker
processes; the result lands in MinIO as result.json and on the run-results topic, and a
redelivered job is re-announced from result.json rather than retrained.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from synscale.bus.base import dead_letter_topic
from synscale.config import Topics
from synscale.runtime import ServiceContext
from synscale.study import TrainingRecipe
from synscale.v1 import common_pb2, trainer_pb2
from synscale_trainer import jobs
from synscale_trainer.fixtures import write_fake_cell
from synscale_trainer.runs import build_manager
from synscale_trainer.train import TrainOptions
from synscale_trainer.worker import subscriptions

from .harness import consume

pytestmark = pytest.mark.infra
STUDY = "trainer-kafka"


def test_training_job_over_kafka_and_minio(kafka_bus, minio_store, unique: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    topics = Topics(prefix=f"trainer-{unique}", default_partitions=2)
    for logical in ("training-jobs", "run-results"):
        kafka_bus.ensure_topic(topics.name(logical), 2)
    ctx = ServiceContext(kafka_bus, minio_store, topics)
    manager = build_manager(ctx, TrainOptions(cache_dir=tmp_path / "cache", num_workers=2,
                                              checkpoint_every_s=0))
    write_fake_cell(minio_store, STUDY, per_class=12, shard_size=6)

    recipe = TrainingRecipe(min_steps=4, max_steps=4, batch_size=16)
    job = trainer_pb2.TrainingJob(
        study_id=STUDY,
        arch="embedded-cnn",
        n_per_class=10,
        real_per_class=2,
        seed=1,
        cells=[common_pb2.CellId(generator="fake", cfg=2.0, strategy="classname")],
        eval_sets=["fashion-mnist-test", "noise"],
        eval_limit=100,
        recipe_json=recipe.model_dump_json(),
        bucket=minio_store.bucket,
    )
    bad = trainer_pb2.TrainingJob(study_id=STUDY, arch="embedded-cnn", n_per_class=999, cells=job.cells)
    jobs_topic = topics.name("training-jobs")
    for message in (job, bad, job):  # the second copy of `job` is a redelivery
        kafka_bus.publish(jobs_topic, message.SerializeToString(), key=STUDY)
    kafka_bus.flush()

    (sub,) = subscriptions(ctx, manager)
    worker = kafka_bus.subscribe(
        [topics.name(t) for t in sub.topics], sub.group, sub.handler, retry=sub.retry
    )
    try:
        handled, deadline = 0, time.monotonic() + 240
        while handled < 3 and time.monotonic() < deadline:
            handled += worker.run(max_messages=3 - handled, idle_timeout_s=3)
    finally:
        worker.close()
    assert handled == 3

    results = []
    for m in consume(kafka_bus, topics.name("run-results"), f"check-{unique}", 3):
        r = trainer_pb2.RunResult()
        r.ParseFromString(m.value)
        results.append(r)
    done = [r for r in results if r.status == "done"]
    failed = [r for r in results if r.status == "failed"]
    assert len(done) == 2 and done[0] == done[1]  # trained once, re-announced once
    assert len(failed) == 1 and "n_per_class" in failed[0].error
    result = done[0]
    assert result.steps == 4 and result.train_images == 120 and result.device == "cpu"
    assert [e.set_name for e in result.evals] == ["fashion-mnist-test", "noise"]
    assert all(e.n == 100 and 0 <= e.top1 <= e.top5 <= 1 for e in result.evals)
    stored = jobs.load_result(minio_store, jobs.normalise(job))
    assert stored == result
    assert minio_store.exists(result.checkpoint_key)
    assert len(list((tmp_path / "cache").rglob("*.tar"))) == 20  # 10 classes x 2 shards, each downloaded once
    dlq = consume(kafka_bus, dead_letter_topic(jobs_topic), f"dlq-{unique}", 1)
    assert len(dlq) == 1
