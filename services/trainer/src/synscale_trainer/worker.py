"""Kafka adapter: training jobs in, run results out (one job at a time per process).

The handler is idempotent, as at-least-once delivery requires: a job whose result.json
exists is re-announced, not retrained; a job with a checkpoint resumes from it. Input
that can never succeed (malformed message, unknown arch, N beyond the data, empty
cell) is announced as a failed RunResult and dead-lettered at once (PoisonMessage);
other errors are retried by the worker loop and resume from the last checkpoint.
"""

from __future__ import annotations

import logging

from google.protobuf.message import DecodeError

from synscale.bus.base import ConsumerOptions, Message, PoisonMessage, RetryPolicy
from synscale.errors import InvalidInput, PreconditionFailed
from synscale.runtime import ServiceContext, Subscription
from synscale.v1 import trainer_pb2
from synscale_trainer import jobs
from synscale_trainer.runs import RunManager, build_manager

log = logging.getLogger(__name__)
GROUP = "trainer"


class TrainingJobHandler:
    def __init__(self, ctx: ServiceContext, manager: RunManager) -> None:
        self.ctx = ctx
        self.manager = manager

    def __call__(self, message: Message) -> None:
        job = trainer_pb2.TrainingJob()
        try:
            job.ParseFromString(message.value)
        except DecodeError as exc:
            raise PoisonMessage(f"not a TrainingJob: {exc}") from None
        try:
            job = jobs.normalise(job)
        except InvalidInput as exc:
            self._announce_failure(job, exc)
            raise PoisonMessage(str(exc)) from None
        done = jobs.load_result(self.ctx.store, job)
        if done is not None and done.status == "done":
            log.info("run %s already finished; re-announcing its result", job.run_id)
            self.ctx.publish("run-results", done.SerializeToString(), key=job.run_id)
            return
        try:
            self.manager.run(job)  # publishes the result (done / cancelled / bad input)
        except (InvalidInput, PreconditionFailed) as exc:
            raise PoisonMessage(f"run {job.run_id}: {exc}") from None

    def _announce_failure(self, job: trainer_pb2.TrainingJob, exc: Exception) -> None:
        result = trainer_pb2.RunResult(
            study_id=job.study_id,
            run_id=job.run_id,
            job=job,
            status="failed",
            error=f"{type(exc).__name__}: {exc}",
        )
        self.ctx.publish("run-results", result.SerializeToString(), key=job.run_id or None)


def subscriptions(ctx: ServiceContext, manager: RunManager | None = None) -> list[Subscription]:
    handler = TrainingJobHandler(ctx, manager or build_manager(ctx))
    return [
        Subscription(
            ("training-jobs",), GROUP, handler, RetryPolicy(max_attempts=3, initial_backoff_s=1.0),
            # One run at a time, and a poll interval longer than any run, so Kafka never
            # evicts a busy trainer and hands its job to a second one.
            ConsumerOptions(max_poll_records=1, max_poll_interval_s=6 * 3600),
        )
    ]
