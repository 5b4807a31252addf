"""The reconciler (ADR 0016): lost work is found by comparing the plan with the store.

The stand-in services of conftest.py dead-letter one real generation job and one real
training job on their first delivery, as a bug fixed since or a lost message would leave
them. Without a person the study must still finish, each shard and run made once, and the
status must say what was re-issued and why.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from synscale import layout
from synscale.bus.base import MISSING_ONLY_HEADER, Message, PoisonMessage
from synscale.embedded import EmbeddedRunner, run_study
from synscale.runtime import ServiceContext, Subscription
from synscale.study import StudySpec
from synscale.v1 import generator_pb2, study_pb2, trainer_pb2
from synscale_analyzer.orchestrator import Orchestrator
from synscale_analyzer.reconcile import reconciler_for


def _lose_first(provider: Any, pick: Callable[[Message], bool],
                ctx_pick: Callable[[ServiceContext, Message], bool] | None = None) -> Any:
    """`provider` whose handler dead-letters the first message `pick` (or `ctx_pick`) chooses."""
    lost: list[bytes] = []

    def wrapped(ctx: ServiceContext) -> list[Subscription]:
        subs = []
        for sub in provider(ctx):
            def handler(m: Message, inner: Any = sub.handler) -> None:
                if not lost and (ctx_pick(ctx, m) if ctx_pick else pick(m)):
                    lost.append(m.value)
                    raise PoisonMessage("injected: lost on first delivery")
                inner(m)
            subs.append(Subscription(sub.topics, sub.group, handler, sub.retry, sub.options))
        return subs

    wrapped.lost = lost  # type: ignore[attr-defined]
    return wrapped


def test_dead_lettered_generation_and_training_jobs_are_reissued_and_the_study_finishes(
    tmp_path: Path, toy_spec: StudySpec, fakes: Any,
) -> None:
    log, providers = fakes()
    gen = _lose_first(providers["generator"], lambda m: True)
    train = _lose_first(providers["trainer"],
                        lambda m: trainer_pb2.TrainingJob.FromString(m.value).n_per_class > 0)
    providers = {**providers, "generator": gen, "trainer": train}
    outcome = run_study(toy_spec, tmp_path, providers=providers, progress=False)

    assert outcome.state == "done", outcome.dead_letters
    assert len(outcome.dead_letters) == 2 and gen.lost and train.lost
    assert set(log.shards_written.values()) == {1}, "a shard was generated twice"
    assert set(log.runs_trained.values()) == {1}, "a run was trained twice"
    lost_run = trainer_pb2.TrainingJob.FromString(train.lost[0]).run_id
    assert lost_run in log.runs_trained

    with EmbeddedRunner(tmp_path, {"analyzer": providers["analyzer"]}) as runner:
        status = Orchestrator(runner.ctx).status(toy_spec.study_id)
    assert status.state == "done"
    by_stage = {r.stage: r for r in status.reissued}
    assert set(by_stage) == {"generation", "training"}
    assert "images missing from the store" in by_stage["generation"].reason
    assert lost_run in by_stage["training"].reason and by_stage["training"].count == 1


def test_a_lost_cell_completing_shard_event_is_reannounced_to_the_scorer(
    tmp_path: Path, toy_spec: StudySpec, fakes: Any,
) -> None:
    from synscale.plan import study_classes

    log, providers = fakes()
    shards_per_cell = len(study_classes(toy_spec)) * -(-toy_spec.max_images_per_class // 8)

    def completes_a_cell(ctx: ServiceContext, m: Message) -> bool:
        job = generator_pb2.ShardReady.FromString(m.value).shard.job
        prefix = layout.cell_prefix(job.study_id, job.cell.generator, job.cell.cfg, job.cell.strategy)
        return len(list(ctx.store.list(prefix))) == shards_per_cell

    scorer = _lose_first(providers["scorer"], lambda m: False, completes_a_cell)
    outcome = run_study(toy_spec, tmp_path, providers={**providers, "scorer": scorer}, progress=False)
    assert outcome.state == "done", outcome.dead_letters
    assert scorer.lost and len(outcome.dead_letters) == 1
    assert set(log.cells_scored.values()) == {1} and set(log.shards_written.values()) == {1}
    with EmbeddedRunner(tmp_path, {"analyzer": providers["analyzer"]}) as runner:
        status = Orchestrator(runner.ctx).status(toy_spec.study_id)
    (scoring,) = [r for r in status.reissued if r.stage == "scoring"]
    assert "every image but no scores" in scoring.reason and scoring.count == shards_per_cell


def test_nothing_is_reissued_for_a_study_that_is_complete_or_still_busy(
    tmp_path: Path, toy_spec: StudySpec, fakes: Any,
) -> None:
    _, providers = fakes()
    assert run_study(toy_spec, tmp_path, providers=providers, progress=False).state == "done"
    with EmbeddedRunner(tmp_path, {"analyzer": providers["analyzer"]}) as runner:
        assert runner.ctx.run_idle_hooks() == 0
        status = Orchestrator(runner.ctx).status(toy_spec.study_id)
    assert list(status.reissued) == []

    # A study whose jobs are still queued (a generator has them) is not touched.
    busy = tmp_path / "busy"
    _, providers = fakes()
    only = {"analyzer": providers["analyzer"], "prompter": providers["prompter"]}
    with EmbeddedRunner(busy, only) as runner:
        from synscale_analyzer.orchestrator import submit_study

        submit_study(runner.ctx, toy_spec)
        runner.pump()  # the prompter publishes; nobody consumes generation-jobs
        before = len(runner.messages("generation-jobs"))
        runner.bus.subscribe([runner.topics.name("generation-jobs")], "generator", lambda m: None)
        assert before > 0 and runner.ctx.run_idle_hooks() == 0
        assert len(runner.messages("study-submissions")) == 1


def test_the_reissued_submission_asks_for_missing_work_only_and_the_analyzer_ignores_it(
    tmp_path: Path, toy_spec: StudySpec, fakes: Any,
) -> None:
    _, providers = fakes()

    def losing_generator(ctx: ServiceContext) -> list[Subscription]:
        return [Subscription(("generation-jobs",), "generator", lambda m: None)]  # every job lost

    with EmbeddedRunner(tmp_path, {"analyzer": providers["analyzer"], "prompter": providers["prompter"],
                                   "generator": losing_generator}) as runner:
        from synscale_analyzer.orchestrator import submit_study

        submit_study(runner.ctx, toy_spec)
        runner.pump()
        assert runner.ctx.run_idle_hooks() == 1  # every image is missing, nothing is queued
        subs = runner.bus.messages(runner.topics.name("study-submissions"))
        assert len(subs) == 2 and dict(subs[1].headers) == {MISSING_ONLY_HEADER: b"1"}
        assert study_pb2.StudySubmission.FromString(subs[1].value).study_id == toy_spec.study_id
        events = [study_pb2.StudyEvent.FromString(v) for v in runner.messages("study-events")]
        submitted = [e for e in events if e.stage == "submitted"]
        runner.pump()
        again = [study_pb2.StudyEvent.FromString(v) for v in runner.messages("study-events")]
        assert [e for e in again if e.stage == "submitted"] == submitted, \
            "the analyzer treated its own re-submission as a new submission"
        assert any(e.stage == "reconcile" for e in again)


def test_events_of_unknown_studies_are_dropped_without_reading_the_store(tmp_path: Path) -> None:
    with EmbeddedRunner(tmp_path, {}) as runner:
        orch = Orchestrator(runner.ctx)
        reconciler_for(orch).first_pass()
        assert orch.known_folders == set()

        class NoStore:
            def __getattr__(self, name: str) -> Any:
                raise AssertionError(f"the store was touched ({name})")

        orch.ctx = ServiceContext(runner.bus, NoStore(), runner.topics, runner.ctx.config)  # type: ignore[arg-type]
        ref = generator_pb2.ShardReady()
        ref.shard.job.study_id = "nobody-submitted-this"
        orch.on_shard(ref.SerializeToString())
