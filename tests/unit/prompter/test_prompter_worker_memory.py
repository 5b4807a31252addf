"""The worker on the in-memory bus: study submission in, generation jobs out."""

from __future__ import annotations

import itertools

import pytest

from synscale.bus.memory import MemoryBus
from synscale.config import Topics
from synscale.ids import job_id
from synscale.runtime import ServiceContext
from synscale.store.file import FileStore
from synscale.study import parse_study
from synscale.v1 import common_pb2, generator_pb2, study_pb2
from synscale_prompter.config import PrompterConfig
from synscale_prompter.worker import GROUP, SubmissionHandler, subscriptions

STUDY = """
name: prompter-unit
seed: 7
classes: {set: fashion-mnist, ids: [sneaker, tshirt, bag]}
generators:
  - {name: tiny, cfg: [1.0, 2.0], steps: 5, eta: 0.5, options: {ema: "true"}}
  - {name: other, backend: sd, model_path: /models/sd, resolution: 64, cfg: [3.0]}
strategies: [classname, clip_templates]
images_per_class: [10, 100]
"""
SHARD = 64
CHUNKS = [(0, 64), (64, 36)]


def run_worker(bus: MemoryBus, ctx: ServiceContext) -> int:
    (sub,) = subscriptions(ctx)
    assert (sub.topics, sub.group) == (("study-submissions",), GROUP)
    worker = bus.subscribe([ctx.topics.name(t) for t in sub.topics], sub.group, sub.handler, retry=sub.retry)
    try:
        return worker.run(idle_timeout_s=0.3, poll_timeout_s=0.05)
    finally:
        worker.close()


def submit(ctx: ServiceContext, yaml_text: str, study_id: str = "") -> None:
    ctx.publish("study-submissions", study_pb2.StudySubmission(study_id=study_id, spec_yaml=yaml_text)
                .SerializeToString(), key=study_id or "x")


@pytest.fixture
def memory(tmp_path, unique, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SYNSCALE_SHARD_SIZE", str(SHARD))
    bus = MemoryBus(default_partitions=4)
    ctx = ServiceContext(bus, FileStore(tmp_path / "store", "bucket-a"), Topics(prefix=f"t{unique}"))
    return bus, ctx


def jobs_of(bus: MemoryBus, ctx: ServiceContext) -> list[tuple[bytes | None, generator_pb2.GenerationJob]]:
    return [(m.key, generator_pb2.GenerationJob.FromString(m.value))
            for m in bus.messages(ctx.topics.name("generation-jobs"))]


def test_one_job_per_generator_cfg_strategy_class_chunk(memory) -> None:  # type: ignore[no-untyped-def]
    bus, ctx = memory
    spec = parse_study(STUDY)
    submit(ctx, STUDY, spec.study_id)
    assert run_worker(bus, ctx) == 1

    jobs = jobs_of(bus, ctx)
    cells = [("tiny", 1.0), ("tiny", 2.0), ("other", 3.0)]
    expected_keys = {
        job_id({"study_id": spec.study_id, "generator": g, "cfg": cfg, "strategy": s, "class_id": c,
                "seed_start": start, "seed_count": count}).encode()
        for (g, cfg), s, c, (start, count) in itertools.product(
            cells, ["classname", "clip_templates"], ["tshirt", "sneaker", "bag"], CHUNKS)
    }
    assert len(jobs) == 3 * 2 * 3 * 2 == 36
    assert {k for k, _ in jobs} == expected_keys  # one job each, keyed by its identity
    assert len({m.partition for m in bus.messages(ctx.topics.name("generation-jobs"))}) > 1

    for _, job in jobs:
        ident = job.job
        assert ident.study_id == spec.study_id
        assert [(p.class_id, p.strategy, p.index) for p in job.prompts] == [
            (ident.class_id, ident.cell.strategy, i)
            for i in range(ident.seed_start, ident.seed_start + ident.seed_count)]
        assert job.bucket == "bucket-a" and job.shard_size == SHARD
        assert job.class_index == {"tshirt": 0, "sneaker": 7, "bag": 8}[ident.class_id]
        assert job.generator.name == ident.cell.generator
    tiny = next(j for _, j in jobs if j.job.cell.generator == "tiny").generator
    assert (tiny.backend, tiny.steps, list(tiny.cfg_grid), dict(tiny.options), tiny.eta) == \
        ("embedded", 5, [1.0, 2.0], {"ema": "true"}, 0.5)  # eta has its own field, not a repr() option
    other = next(j for _, j in jobs if j.job.cell.generator == "other").generator
    assert (other.backend, other.model_path, other.resolution) == ("sd", "/models/sd", 64)

    # Same prompts for every CFG value (and generator): cells differ by guidance only.
    by_chunk: dict[tuple[str, str, int], set[bytes]] = {}
    for _, job in jobs:
        key = (job.job.cell.strategy, job.job.class_id, job.job.seed_start)
        by_chunk.setdefault(key, set()).add(b"".join(p.SerializeToString() for p in job.prompts))
    assert len(by_chunk) == 2 * 3 * 2 and all(len(v) == 1 for v in by_chunk.values())
    templated = [j for _, j in jobs if j.job.cell.strategy == "clip_templates"]
    assert len({p.text for j in templated for p in j.prompts}) > 20

    (event,) = [study_pb2.StudyEvent.FromString(m.value)
                for m in bus.messages(ctx.topics.name("study-events"))]
    assert (event.study_id, event.stage, event.done, event.total) == (spec.study_id, "prompts", 36, 36)


def test_prompts_match_build_prompts_for_the_study(memory) -> None:  # type: ignore[no-untyped-def]
    from synscale_prompter.builder import class_prompts, prepare_strategy
    from synscale_prompter.classes import fashion_mnist

    bus, ctx = memory
    spec = parse_study(STUDY)
    submit(ctx, STUDY)
    run_worker(bus, ctx)
    job = next(j for _, j in jobs_of(bus, ctx)
               if (j.job.cell.strategy, j.job.class_id, j.job.seed_start) == ("clip_templates", "bag", 64))
    strategy = prepare_strategy("clip_templates", fashion_mnist())
    assert list(job.prompts) == class_prompts(strategy, fashion_mnist().get("bag"), 64, 36, spec.study_id)


def test_redelivery_republishes_identical_jobs(memory) -> None:  # type: ignore[no-untyped-def]
    bus, ctx = memory
    submit(ctx, STUDY)
    submit(ctx, STUDY)
    assert run_worker(bus, ctx) == 2
    messages = bus.messages(ctx.topics.name("generation-jobs"))
    assert len(messages) == 72
    first, second = {}, {}
    for m in messages:
        (second if m.key in first else first)[m.key] = m.value
    assert first == second  # same keys, same bytes


def test_shard_size_comes_from_the_environment(tmp_path, unique) -> None:  # type: ignore[no-untyped-def]
    bus = MemoryBus(default_partitions=2)
    ctx = ServiceContext(bus, FileStore(tmp_path, "b"), Topics(prefix=f"u{unique}"))
    handler = SubmissionHandler(ctx, PrompterConfig.from_env({"SYNSCALE_SHARD_SIZE": "30"}))
    spec = parse_study(STUDY)
    planner = handler.planner(spec)
    counts = [j.job.seed_count for _, j in planner.jobs()
              if j.job.class_id == "bag" and j.job.cell.cfg == 3.0 and j.job.cell.strategy == "classname"]
    assert counts == [30, 30, 30, 10]
    assert planner.count() == 3 * 2 * 3 * 4 == len(list(planner.jobs()))


@pytest.mark.parametrize(("spec_yaml", "reason"), [
    ("name: [unclosed", "not valid YAML"),
    ("name: s\ngenerators: [{name: g}]\nimages_per_class: [0]\n", "images_per_class: sizes must be in"),
    ("name: s\ngenerators: [{name: g}]\nimages_per_class: [4]\nclasses: {set: fashion-mnist, ids: [hat]}\n",
     "classes.ids[0]: unknown class 'hat'"),
    ("name: s\ngenerators: [{name: g}]\nimages_per_class: [4]\nstrategies: [word2sen]\n"
     "prompts: {word2sen_model: /nonexistent}\n", "word2sen_model: /nonexistent is not a transformers model"),
    ("", "empty spec_yaml"),
])
def test_poison_submissions_go_to_the_dead_letter_topic(memory, spec_yaml: str, reason: str) -> None:  # type: ignore[no-untyped-def]
    bus, ctx = memory
    submit(ctx, spec_yaml)
    submit(ctx, STUDY)  # the worker moves on
    assert run_worker(bus, ctx) == 2
    (letter,) = [common_pb2.DeadLetter.FromString(m.value)
                 for m in bus.messages(ctx.topics.name("study-submissions") + ".dlq")]
    assert "PoisonMessage" in letter.error and reason in letter.error, letter.error
    assert letter.attempts == 1 and letter.consumer_group == GROUP
    assert len(jobs_of(bus, ctx)) == 36


def test_garbage_bytes_are_poison(memory) -> None:  # type: ignore[no-untyped-def]
    bus, ctx = memory
    bus.publish(ctx.topics.name("study-submissions"), b"\xff\xfe not a protobuf", key="x")
    run_worker(bus, ctx)
    (letter,) = bus.messages(ctx.topics.name("study-submissions") + ".dlq")
    assert b"not a StudySubmission" in common_pb2.DeadLetter.FromString(letter.value).error.encode()
