"""Kafka worker: a study submission in, generation jobs out.

The study's jobs are `synscale.plan.chunks` (generator x strategy x class x chunk of
`shard_size`, one GenerationJob per CFG value); this worker adds the prompts, computed
once per chunk and shared by every CFG value. Jobs are keyed by `synscale.plan.job_key`:
keys spread over partitions, and a redelivered submission republishes byte-identical jobs
under the same keys (the generator skips shards that already exist).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property

from google.protobuf.message import DecodeError

from synscale import plan
from synscale.bus.base import MISSING_ONLY_HEADER, Message, PoisonMessage
from synscale.errors import InvalidInput
from synscale.runtime import ServiceContext, Subscription
from synscale.study import StudySpec, parse_study
from synscale.v1 import common_pb2, generator_pb2, study_pb2
from synscale_prompter.builder import class_prompts, prepare_strategy
from synscale_prompter.classes import ClassSet, class_set_for_spec
from synscale_prompter.config import PrompterConfig
from synscale_prompter.strategies import Strategy, StrategyOptions

log = logging.getLogger(__name__)
GROUP = "prompter"


@dataclass
class JobPlanner:
    """Turns one parsed study into its generation jobs (pure: no bus, no store writes)."""

    spec: StudySpec
    class_set: ClassSet
    bucket: str
    shard_size: int = 64
    cache: object = None  # ObjectStore for model outputs

    @cached_property
    def strategies(self) -> dict[str, Strategy]:
        """One checked strategy per study strategy (model outputs are cached inside)."""
        p = self.spec.prompts
        options = StrategyOptions(
            class_set=self.class_set.name, word2sen_model=p.word2sen_model, word2sen_k=p.word2sen_k,
            captioner_model=p.captioner_model, captions_per_class=p.captions_per_class,
            real_path=self.spec.real.path, cache=self.cache)
        return {s: prepare_strategy(s, self.class_set, options, field=f"strategies[{i}]")
                for i, s in enumerate(self.spec.strategies)}

    def count(self) -> int:
        return plan.job_count(self.spec, len(self.class_set), self.shard_size)

    def jobs(self) -> Iterator[tuple[str, generator_pb2.GenerationJob]]:
        """(key, job) for every generator x strategy x class x chunk x CFG (synscale.plan.chunks)."""
        study_id = self.spec.study_id
        specs = {g.name: plan.generator_spec(g) for g in self.spec.generators}
        shard_size = min(self.shard_size, self.spec.max_images_per_class)
        for chunk in plan.chunks(self.spec, self.class_set, self.shard_size):
            strategy = self.strategies[chunk.strategy]
            prompts = class_prompts(strategy, chunk.cls, chunk.start, chunk.count, study_id)
            info = common_pb2.ClassInfo(id=chunk.cls.id, name=chunk.cls.name, index=chunk.cls.index,
                                        description=chunk.cls.description, hypernym=chunk.cls.hypernym)
            for identity in chunk.identities(study_id):
                job = generator_pb2.GenerationJob(
                    job=identity, generator=specs[chunk.generator.name], prompts=prompts,
                    class_index=chunk.cls.index, bucket=self.bucket, shard_size=shard_size,
                    class_info=info)
                yield plan.job_key(identity), job


def parse_submission(value: bytes) -> tuple[study_pb2.StudySubmission, StudySpec]:
    """Decode and validate; anything wrong here can never succeed -> PoisonMessage."""
    try:
        submission = study_pb2.StudySubmission.FromString(value)
    except DecodeError as exc:
        raise PoisonMessage(f"not a StudySubmission: {exc}") from None
    if not submission.spec_yaml.strip():
        raise PoisonMessage("submission has an empty spec_yaml")
    try:
        spec = parse_study(submission.spec_yaml, f"study {submission.study_id or '<unnamed>'}")
    except InvalidInput as exc:
        raise PoisonMessage(str(exc)) from None
    if submission.study_id and submission.study_id != spec.study_id:
        log.warning("submission says study %s but its spec hashes to %s; using the latter",
                    submission.study_id, spec.study_id)
    return submission, spec


class SubmissionHandler:
    """The `study-submissions` handler; the same object runs on MemoryBus and Kafka."""

    def __init__(self, ctx: ServiceContext, config: PrompterConfig | None = None) -> None:
        self.ctx = ctx
        self.config = config or PrompterConfig.from_env()

    def planner(self, spec: StudySpec) -> JobPlanner:
        try:
            class_set = class_set_for_spec(spec.classes)
            planner = JobPlanner(spec, class_set, self.ctx.store.bucket, self.config.shard_size,
                                 self.ctx.store)
            _ = planner.strategies  # fail now (poison) on a bad model path or missing gloss
        except InvalidInput as exc:
            raise PoisonMessage(f"study {spec.study_id}: {exc}") from None
        return planner

    def __call__(self, message: Message) -> None:
        _, spec = parse_submission(message.value)
        planner = self.planner(spec)
        # The analyzer's reconciler re-submits a stalled study asking for missing work only.
        missing_only = any(k == MISSING_ONLY_HEADER for k, _ in message.headers)
        published = 0
        for key, job in planner.jobs():
            if missing_only and self.ctx.store.exists(plan.shard_key_of(job.job)):
                continue
            self.ctx.publish("generation-jobs", job.SerializeToString(), key=key)
            published += 1
        event = study_pb2.StudyEvent(study_id=spec.study_id, stage="prompts",
                                     detail=f"{published} generation jobs published",
                                     done=published, total=published)
        self.ctx.publish("study-events", event.SerializeToString(), key=spec.study_id)
        log.info("study %s: %d generation jobs (%d classes, shard size %d)", spec.study_id,
                 published, len(planner.class_set), planner.shard_size)


def subscriptions(ctx: ServiceContext, config: PrompterConfig | None = None) -> list[Subscription]:
    return [Subscription(topics=("study-submissions",), group=GROUP, handler=SubmissionHandler(ctx, config))]
