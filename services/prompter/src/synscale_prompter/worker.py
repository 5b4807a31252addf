"""Kafka worker: a study submission in, generation jobs out.

For every generator x strategy x class, images [0, max(images_per_class)) are cut
into chunks of `shard_size`; each chunk becomes one GenerationJob per CFG value. The
prompts of a chunk are computed once and shared by every CFG value (and every
generator), so cells differ only by what the study varies. Jobs are keyed by
`ids.job_id` of their identity: keys spread over partitions, and a redelivered
submission republishes byte-identical jobs under the same keys (the generator skips
shards that already exist).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property

from google.protobuf.message import DecodeError

from synscale.bus.base import MISSING_ONLY_HEADER, Message, PoisonMessage
from synscale.errors import InvalidInput
from synscale.ids import job_id, shard_key
from synscale.runtime import ServiceContext, Subscription
from synscale.study import GeneratorConfig, StudySpec, parse_study
from synscale.v1 import common_pb2, generator_pb2, study_pb2
from synscale_prompter.builder import class_prompts, prepare_strategy
from synscale_prompter.classes import ClassSet, class_set_for_spec
from synscale_prompter.config import PrompterConfig
from synscale_prompter.strategies import Strategy, StrategyOptions

log = logging.getLogger(__name__)
GROUP = "prompter"


def generator_spec(g: GeneratorConfig) -> study_pb2.GeneratorSpec:
    """The proto form of a study's generator (eta travels in options: the proto has no field)."""
    options = dict(g.options)
    options.setdefault("eta", repr(float(g.eta)))
    return study_pb2.GeneratorSpec(
        name=g.name, backend=g.backend, model_path=g.model_path, resolution=g.resolution,
        steps=g.steps, scheduler=g.scheduler, dtype=g.dtype, batch_size=g.batch_size,
        cfg_grid=list(g.cfg), negative_prompt=g.negative_prompt, options=options,
    )


def identity_fields(identity: common_pb2.JobIdentity) -> dict[str, object]:
    """The flat mapping whose ids.job_id is a generation job's key."""
    return {
        "study_id": identity.study_id, "generator": identity.cell.generator,
        "cfg": float(identity.cell.cfg), "strategy": identity.cell.strategy,
        "class_id": identity.class_id, "seed_start": int(identity.seed_start),
        "seed_count": int(identity.seed_count),
    }


def job_key(identity: common_pb2.JobIdentity) -> str:
    return job_id(identity_fields(identity))


def shard_key_of(identity: common_pb2.JobIdentity) -> str:
    """Where the generator writes this job's shard (a prompter job is one shard)."""
    return shard_key(identity.study_id, identity.cell.generator, identity.cell.cfg, identity.cell.strategy,
                     identity.class_id, identity.seed_start, identity.seed_count)


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
        chunks = -(-self.spec.max_images_per_class // self.shard_size)
        cells = sum(len(g.cfg) for g in self.spec.generators) * len(self.spec.strategies)
        return cells * len(self.class_set) * chunks

    def jobs(self) -> Iterator[tuple[str, generator_pb2.GenerationJob]]:
        """(key, job) for every generator x strategy x class x chunk x CFG, in that order."""
        study_id = self.spec.study_id
        total = self.spec.max_images_per_class
        specs = {g.name: generator_spec(g) for g in self.spec.generators}
        for g in self.spec.generators:
            for strategy_name, strategy in self.strategies.items():
                for cls in self.class_set:
                    for start in range(0, total, self.shard_size):
                        count = min(self.shard_size, total - start)
                        prompts = class_prompts(strategy, cls, start, count, study_id)
                        for cfg in g.cfg:
                            identity = common_pb2.JobIdentity(
                                study_id=study_id,
                                cell=common_pb2.CellId(generator=g.name, cfg=cfg, strategy=strategy_name),
                                class_id=cls.id, seed_start=start, seed_count=count)
                            job = generator_pb2.GenerationJob(
                                job=identity, generator=specs[g.name], prompts=prompts,
                                class_index=cls.index, bucket=self.bucket,
                                shard_size=min(self.shard_size, total))
                            yield job_key(identity), job


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
            if missing_only and self.ctx.store.exists(shard_key_of(job.job)):
                continue
            self.ctx.publish("generation-jobs", job.SerializeToString(), key=key)
            published += 1
        event = study_pb2.StudyEvent(study_id=spec.study_id, stage="prompts",
                                     detail=f"{published} generation jobs published",
                                     done=published, total=published)
        self.ctx.publish("study-events", event.SerializeToString(), key=spec.study_id)
        log.info("study %s: %d generation jobs (%d classes, shard size %d)", spec.study_id,
                 published, len(planner.class_set), planner.shard_size)


def subscriptions(ctx: ServiceContext) -> list[Subscription]:
    return [Subscription(topics=("study-submissions",), group=GROUP, handler=SubmissionHandler(ctx))]
