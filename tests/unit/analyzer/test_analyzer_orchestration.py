"""Orchestration: hand-made events in, training jobs and the report out; restart and resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from synscale import codecs, layout
from synscale.bus.base import PoisonMessage
from synscale.bus.memory import MemoryBus
from synscale.config import Topics
from synscale.embedded import EmbeddedRunner, run_study
from synscale.plan import cells_of, plan_runs
from synscale.runtime import ServiceContext
from synscale.store.file import FileStore
from synscale.study import StudySpec
from synscale.v1 import common_pb2, generator_pb2, study_pb2, trainer_pb2
from synscale_analyzer.orchestrator import Orchestrator, launched_key, spec_key, submit_study


def make_ctx(root: Path) -> tuple[ServiceContext, MemoryBus]:
    bus = MemoryBus(3)
    ctx = ServiceContext(bus, FileStore(root, "synscale"), Topics(default_partitions=3))
    ctx.topics.ensure_all(bus)
    return ctx, bus


def jobs_published(bus: MemoryBus, ctx: ServiceContext) -> list[trainer_pb2.TrainingJob]:
    topic = ctx.topics.name("training-jobs")
    return [trainer_pb2.TrainingJob.FromString(m.value) for m in bus.messages(topic)]


def shard_event(spec: StudySpec, cell: object, class_id: str, start: int, count: int) -> bytes:
    g, cfg, strat = cell.generator, cell.cfg, cell.strategy  # type: ignore[attr-defined]
    ident = common_pb2.JobIdentity(study_id=spec.study_id, cell=common_pb2.CellId(generator=g, cfg=cfg,
                                   strategy=strat), class_id=class_id, seed_start=start, seed_count=count)
    key = layout.shard_key(spec.study_id, g, cfg, strat, class_id, start, count)
    ref = common_pb2.ShardRef(key=key, count=count, job=ident)
    return generator_pb2.ShardReady(shard=ref).SerializeToString()


def test_plan_is_complete_and_deterministic(toy_spec: StudySpec) -> None:
    runs = plan_runs(toy_spec, "b")
    cells = cells_of(toy_spec)
    assert len(cells) == 4
    # 3 real + 4 cells x 3 sizes x (synthetic + mixed)
    assert len(runs) == 3 + 4 * 3 * 2
    assert [r.run_id for r in runs] == [r.run_id for r in plan_runs(toy_spec, "b")]
    assert len({r.run_id for r in runs}) == len(runs)
    mixed = [r for r in runs if r.source == "mixed"]
    assert all(r.job.real_per_class == 4 and len(r.job.cells) == 1 for r in mixed)
    real = [r for r in runs if r.source == "real"]
    assert [r.job.real_per_class for r in real] == [4, 8, 16] and all(not r.job.cells for r in real)
    assert list(runs[0].job.eval_sets) == ["fashion-mnist-test", "inverted"]


def test_events_drive_training_jobs_and_the_report(tmp_path: Path, toy_spec: StudySpec) -> None:
    ctx, bus = make_ctx(tmp_path)
    orch = Orchestrator(ctx)
    sub = submit_study(ctx, toy_spec)
    assert ctx.store.exists(spec_key(toy_spec.study_id))
    orch.on_submission(sub.SerializeToString())
    # Real-only runs need no generated data: launched at once.
    first = jobs_published(bus, ctx)
    assert sorted(j.real_per_class for j in first) == [4, 8, 16] and all(not j.cells for j in first)

    cell = cells_of(toy_spec)[0]
    classes = toy_spec.classes.ids or []
    for cid in classes[:-1]:
        orch.on_shard(shard_event(toy_spec, cell, cid, 0, 8))
    assert len(jobs_published(bus, ctx)) == 3  # one class still has no images
    orch.on_shard(shard_event(toy_spec, cell, classes[-1], 0, 8))
    first_ids = {j.run_id for j in first}
    launched = [j for j in jobs_published(bus, ctx) if j.run_id not in first_ids]
    # Sizes 4 and 8 of this cell, synthetic and mixed; 16 waits for images 8..15.
    assert sorted((j.n_per_class, j.real_per_class) for j in launched) == [(4, 0), (4, 4), (8, 0), (8, 4)]
    assert all(ctx.store.exists(launched_key(toy_spec.study_id, j.run_id)) for j in launched)
    orch.on_shard(shard_event(toy_spec, cell, classes[-1], 0, 8))  # redelivered: nothing new
    assert len(jobs_published(bus, ctx)) == 7
    status = orch.status(toy_spec.study_id)
    stages = {s.stage: (s.done, s.total) for s in status.stages}
    assert stages["generation"] == (3 * 8, 4 * 3 * 16)
    assert stages["training"] == (0, 27)
    assert status.state == "running"
    with pytest.raises(PoisonMessage):
        orch.on_shard(b"\xff not a proto")


def test_restarted_analyzer_rebuilds_state_from_the_store(tmp_path: Path, toy_spec: StudySpec, fakes) -> None:  # type: ignore[no-untyped-def]
    log, providers = fakes()
    outcome = run_study(toy_spec, tmp_path, providers=providers, progress=False, max_messages=120)
    assert outcome.state == "stopped"
    ctx, bus = make_ctx(tmp_path / "store")
    orch = Orchestrator(ctx)
    status = orch.status(toy_spec.study_id)  # no event needed: rebuilt from the store alone
    stages = {s.stage: (s.done, s.total) for s in status.stages}
    trained = sum(log.runs_trained.values())
    assert stages["training"] == (trained, 27)
    assert stages["generation"][0] == sum(
        8 for key in log.shards_written if key.startswith(layout.study_prefix(toy_spec.study_id)))
    # Launched runs are remembered: a restart alone does not launch them twice...
    orch.on_shard(shard_event(toy_spec, cells_of(toy_spec)[0], "tshirt", 0, 8))
    assert [j.run_id for j in jobs_published(bus, ctx)] == []
    # ...but a resubmission (the embedded resume, whose bus lost its messages) does, minus finished ones.
    orch.on_submission(study_pb2.StudySubmission(spec_yaml=toy_spec.to_yaml()).SerializeToString())
    relaunched = {j.run_id for j in jobs_published(bus, ctx)}
    assert relaunched and not relaunched & set(log.runs_trained)


def test_restart_after_all_work_finishes_the_report_on_a_duplicate_event(
    tmp_path: Path, toy_spec: StudySpec, fakes,  # type: ignore[no-untyped-def]
) -> None:
    """Killed after the last run result was stored, before the report: the redelivered event
    is no news to the rebuilt state, yet it must still write the report."""
    _, providers = fakes()
    assert run_study(toy_spec, tmp_path, providers=providers, progress=False).state == "done"
    ctx, bus = make_ctx(tmp_path / "store")
    report_key = layout.report_key(toy_spec.study_id, "report.json")
    ctx.store.delete(report_key)
    orch = Orchestrator(ctx)
    assert orch.status(toy_spec.study_id).state != "done"
    runs_prefix = f"{layout.study_prefix(toy_spec.study_id)}/runs/"
    last = next(o.key for o in ctx.store.list(runs_prefix) if o.key.endswith("/result.json"))
    result = codecs.run_result_from_json(ctx.store.get(last))
    orch.on_run_result(result.SerializeToString())
    assert orch.status(toy_spec.study_id).state == "done" and ctx.store.exists(report_key)
    assert jobs_published(bus, ctx) == []  # every run was launched before: none again


def test_status_answers_while_the_report_renders(
    tmp_path: Path, toy_spec: StudySpec, fakes, monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
) -> None:
    """Fits, plots and the report's store writes run outside the orchestrator's lock: a
    GetStatus (another gRPC thread) returns while the worker thread is still rendering."""
    import threading

    from synscale_analyzer import report as report_mod

    _, providers = fakes()
    assert run_study(toy_spec, tmp_path, providers=providers, progress=False).state == "done"
    ctx, _bus = make_ctx(tmp_path / "store")
    ctx.store.delete(layout.report_key(toy_spec.study_id, "report.json"))
    orch = Orchestrator(ctx)
    assert orch.status(toy_spec.study_id).state == "running"

    rendering, release = threading.Event(), threading.Event()
    real_render = report_mod.render

    def slow_render(*args, **kwargs):  # type: ignore[no-untyped-def]
        rendering.set()
        release.wait()
        return real_render(*args, **kwargs)

    monkeypatch.setattr(report_mod, "render", slow_render)
    last = next(o.key for o in ctx.store.list(layout.runs_prefix(toy_spec.study_id))
                if o.key.endswith("/result.json"))
    result = codecs.run_result_from_json(ctx.store.get(last))
    worker = threading.Thread(target=orch.on_run_result, args=(result.SerializeToString(),), daemon=True)
    worker.start()
    try:
        assert rendering.wait(120), "the report never started rendering"
        answers: list[study_pb2.StudyStatus] = []
        asker = threading.Thread(target=lambda: answers.append(orch.status(toy_spec.study_id)), daemon=True)
        asker.start()
        asker.join(60)  # a hang guard: render is blocked until `release`, so only a lock-free path returns
        assert answers and answers[0].state == "running" and not release.is_set()
        stages = {st.stage: (st.done, st.total) for st in answers[0].stages}
        assert stages["training"][0] == stages["training"][1] > 0  # everything in, report pending
    finally:
        release.set()
        worker.join(120)
    assert orch.status(toy_spec.study_id).state == "done"


def _artifacts(root: Path) -> dict[str, bytes]:
    base = root / "store" / "synscale"
    return {str(p.relative_to(base)): p.read_bytes() for p in sorted(base.rglob("*"))
            if p.is_file() and ".synscale-meta" not in p.parts and "/state/" not in str(p.relative_to(base))}


@pytest.mark.slow
def test_interrupted_and_resumed_study_equals_a_straight_run(
    tmp_path: Path, toy_spec: StudySpec, fakes,  # type: ignore[no-untyped-def]
) -> None:
    straight_log, providers = fakes()
    straight = run_study(toy_spec, tmp_path / "straight", providers=providers, progress=False)
    assert straight.state == "done", straight.dead_letters
    assert straight.report_json is not None and straight.report_json.exists()

    log, providers = fakes()
    stops = []
    # Stop twice part-way, each time with a fresh runner (a new process). A resumed runner first
    # replays the generation stage (jobs re-handled idempotently: shards exist, events re-sent),
    # so the second budget must outlast that replay (~62 messages for the toy study) to reach
    # training again.
    for budget in (60, 80):
        out = run_study(toy_spec, tmp_path / "resumed", providers=providers, progress=False,
                        max_messages=budget)
        stops.append((out.state, len(log.runs_trained)))
    resumed = run_study(toy_spec, tmp_path / "resumed", providers=providers, progress=False)
    assert [state for state, _ in stops] == ["stopped", "stopped"] and resumed.state == "done"
    assert 0 < stops[0][1] < stops[1][1] < 27  # both stops fell part-way through training

    # Same numbers, same files, and no piece of work done twice.
    assert resumed.report_json is not None
    assert json.loads(resumed.report_json.read_bytes()) == json.loads(straight.report_json.read_bytes())
    assert _artifacts(tmp_path / "resumed") == _artifacts(tmp_path / "straight")
    assert max(log.shards_written.values()) == 1 and max(log.runs_trained.values()) == 1
    assert max(log.cells_scored.values()) == 1
    assert set(log.runs_trained) == set(straight_log.runs_trained)
    assert len(log.runs_trained) == 27

    # Running a finished study again redoes nothing and reports at once.
    again = run_study(toy_spec, tmp_path / "resumed", providers=providers, progress=False)
    assert again.state == "done" and again.report_json == resumed.report_json
    assert max(log.runs_trained.values()) == 1 and max(log.shards_written.values()) == 1
    assert again.pump.per_consumer["trainer:trainer"] == 0


def test_cancel_stops_launching(tmp_path: Path, toy_spec: StudySpec) -> None:
    ctx, bus = make_ctx(tmp_path)
    orch = Orchestrator(ctx)
    orch.on_submission(submit_study(ctx, toy_spec).SerializeToString())
    before = len(jobs_published(bus, ctx))
    status = orch.cancel(toy_spec.study_id)
    assert status.state == "cancelled"
    cell = cells_of(toy_spec)[0]
    for cid in toy_spec.classes.ids or []:
        orch.on_shard(shard_event(toy_spec, cell, cid, 0, 16))
    assert len(jobs_published(bus, ctx)) == before
    # A cancelled study survives a restart, and a resubmission resumes it.
    orch2 = Orchestrator(make_ctx(tmp_path)[0])
    assert orch2.status(toy_spec.study_id).state == "cancelled"
    orch.on_submission(submit_study(ctx, toy_spec).SerializeToString())
    assert orch.status(toy_spec.study_id).state == "running"
    assert len(jobs_published(bus, ctx)) > before


def test_unknown_study_and_bad_spec(tmp_path: Path) -> None:
    ctx, _ = make_ctx(tmp_path)
    orch = Orchestrator(ctx)
    with pytest.raises(KeyError):
        orch.status("nope-00000000")
    with pytest.raises(PoisonMessage, match="images_per_class"):
        orch.on_submission(study_pb2.StudySubmission(
            spec_yaml="name: x\ngenerators: [{name: g}]\nimages_per_class: [8, 4]\n").SerializeToString())


def test_embedded_runner_reports_dead_letters(tmp_path: Path, toy_spec: StudySpec) -> None:
    from synscale_analyzer.worker import subscriptions as analyzer

    with EmbeddedRunner(tmp_path, {"analyzer": analyzer}) as runner:
        runner.ctx.publish("run-results", b"\x08garbage")
        result = runner.pump()
        assert result.stopped_by == "quiescent"
        letters = runner.dead_letters()
        assert len(letters) == 1 and "RunResult" in letters[0][1]
    json.dumps(letters)


def test_each_series_is_fitted_as_soon_as_it_is_complete(
    tmp_path: Path, toy_spec: StudySpec, fakes,  # type: ignore[no-untyped-def]
) -> None:
    _, providers = fakes()
    with EmbeddedRunner(tmp_path, providers) as runner:
        submit_study(runner.ctx, toy_spec)
        runner.pump()
        events = [study_pb2.StudyEvent.FromString(v) for v in runner.messages("study-events")]
    fits = [e.detail for e in events if e.stage == "fits"]
    # real + 4 synthetic cells + 4 mixed: one slope each, each announced once
    assert len(fits) == 9 and len(set(fits)) == 9
    assert any(d.startswith("real (cnn): alpha = ") for d in fits)
    real_alpha = float(next(d for d in fits if d.startswith("real")).split("= ")[1].split()[0])
    assert 0.4 < real_alpha < 0.6  # the stand-in trainer's real error falls as N^-0.5
