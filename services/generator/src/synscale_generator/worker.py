"""Kafka worker: GenerationJobs in (group "generator"), shards + ShardReady events out.

Every member of the "generator" consumer group takes a share of the generation-jobs
partitions and fetches one job at a time, so another process (or pod) adds throughput.
The bus commits a message only after the handler returned and what it published was
flushed; the handler returns only after its shards are in the store, so a crash means
redelivery, and the redelivered job finds its shards intact and re-announces them
instead of generating again.

Input that can never succeed (undecodable bytes, invalid fields, missing weights) raises
PoisonMessage: the bus dead-letters it with the reason and the worker goes on. Other
failures (store down, OOM at batch size 1) are retried, then dead-lettered.
"""

from __future__ import annotations

import logging

from google.protobuf.message import DecodeError

from synscale.bus.base import ConsumerOptions, Message, PoisonMessage, RetryPolicy
from synscale.errors import InvalidInput, PreconditionFailed
from synscale.runtime import ServiceContext, Subscription
from synscale.v1 import generator_pb2

from .engine import JobRunner

log = logging.getLogger(__name__)

GROUP = "generator"
TOPIC = "generation-jobs"
READY_TOPIC = "shards-ready"

def build_runner(ctx: ServiceContext) -> JobRunner:
    """The process's runner (engine, model cache, device lock), shared by worker and servicer:
    loading a model is the expensive part, so gRPC calls and Kafka messages reuse it."""
    return JobRunner(ctx.store, announce=lambda ready: announce(ctx, ready))


def announce(ctx: ServiceContext, ready: generator_pb2.ShardReady) -> None:
    """Publish ShardReady keyed by the shard key (redeliveries land on the same partition)."""
    ctx.publish(READY_TOPIC, ready.SerializeToString(), key=ready.shard.key)


class GenerationHandler:
    """Handles one generation-jobs message."""

    def __init__(self, runner: JobRunner) -> None:
        self.runner = runner

    def __call__(self, message: Message) -> None:
        try:
            job = generator_pb2.GenerationJob.FromString(message.value)
        except DecodeError as exc:
            raise PoisonMessage(f"value is not a synscale.v1.GenerationJob: {exc}") from exc
        try:
            self.runner.validate(job)
            shards = sum(1 for p in self.runner.run([job]) if p.shard is not None)
        except (InvalidInput, PreconditionFailed) as exc:
            raise PoisonMessage(f"{type(exc).__name__}: {exc}") from exc
        log.info("job %s/%s cfg=%g %s [%d, +%d): %d shard(s) announced", job.job.study_id,
                 job.job.cell.generator, job.job.cell.cfg, job.job.class_id, job.job.seed_start,
                 job.job.seed_count, shards)


def subscriptions(ctx: ServiceContext, runner: JobRunner | None = None) -> list[Subscription]:
    return [
        Subscription(
            (TOPIC,), GROUP, GenerationHandler(runner or build_runner(ctx)),
            RetryPolicy(max_attempts=3, initial_backoff_s=1.0),
            # One job at a time (a job is seconds to minutes of sampling): a member never
            # holds a backlog that idle members could take, and a poll interval longer than
            # any job keeps Kafka from evicting a busy generator and redelivering its job.
            ConsumerOptions(max_poll_records=1, max_poll_interval_s=2 * 3600),
        )
    ]
