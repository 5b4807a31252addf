"""The worker (MemoryBus) and the gRPC Trainer over the same RunManager."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from synscale.bus.base import dead_letter_topic
from synscale.bus.memory import MemoryBus
from synscale.grpc_server import build_server
from synscale.runtime import ServiceContext
from synscale.store.file import FileStore
from synscale.v1 import trainer_pb2, trainer_pb2_grpc
from synscale_trainer import jobs
from synscale_trainer.runs import RunManager, build_manager
from synscale_trainer.servicer import bindings
from synscale_trainer.train import TrainOptions
from synscale_trainer.worker import GROUP, subscriptions

MakeJob = Callable[..., trainer_pb2.TrainingJob]


@pytest.fixture
def ctx(cell_store: FileStore, tmp_path: Path) -> ServiceContext:
    return ServiceContext(MemoryBus(), cell_store)


@pytest.fixture
def manager(ctx: ServiceContext, tmp_path: Path) -> RunManager:
    """The process's one RunManager, handed to the worker and the servicer (as __main__ does)."""
    return build_manager(ctx, TrainOptions(cache_dir=tmp_path / "cache", num_workers=0, checkpoint_every_s=0))


def _results(ctx: ServiceContext) -> list[trainer_pb2.RunResult]:
    bus = ctx.bus
    assert isinstance(bus, MemoryBus)
    out = []
    for m in bus.messages(ctx.topics.name("run-results")):
        r = trainer_pb2.RunResult()
        r.ParseFromString(m.value)
        out.append(r)
    return out


def _consume(ctx: ServiceContext, manager: RunManager, *messages: trainer_pb2.TrainingJob | bytes) -> None:
    (sub,) = subscriptions(ctx, manager)
    assert sub.topics == ("training-jobs",) and sub.group == GROUP
    for m in messages:
        ctx.publish("training-jobs", m if isinstance(m, bytes) else m.SerializeToString())
    worker = ctx.bus.subscribe(
        [ctx.topics.name(t) for t in sub.topics], sub.group, sub.handler, retry=sub.retry
    )
    worker.run(max_messages=len(messages), idle_timeout_s=5)
    worker.close()


def test_worker_trains_announces_and_reannounces(ctx: ServiceContext, manager: RunManager,
                                                 make_job: MakeJob) -> None:
    job = make_job(steps=3)
    _consume(ctx, manager, job, job)  # a redelivery of a finished job
    first, second = _results(ctx)
    assert first.status == "done" and first.steps == 3 and first.evals[0].n == 100
    assert second == first  # re-announced from result.json, not retrained
    stored = jobs.load_result(ctx.store, jobs.normalise(job))
    assert stored == first


def test_worker_dead_letters_bad_input_and_announces_the_failure(
    ctx: ServiceContext, manager: RunManager, make_job: MakeJob
) -> None:
    _consume(ctx, manager, make_job(arch="nonet"))
    (result,) = _results(ctx)
    assert result.status == "failed" and "arch" in result.error
    bus = ctx.bus
    assert isinstance(bus, MemoryBus)
    assert len(bus.messages(dead_letter_topic(ctx.topics.name("training-jobs")))) == 1
    _consume(ctx, manager, b"\xff\xff not protobuf")
    assert len(bus.messages(dead_letter_topic(ctx.topics.name("training-jobs")))) == 2


@pytest.fixture
def stub(ctx: ServiceContext, manager: RunManager) -> Iterator[trainer_pb2_grpc.TrainerStub]:
    server, port, _ = build_server(bindings(ctx, manager))
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    yield trainer_pb2_grpc.TrainerStub(channel)
    channel.close()
    server.stop(0)


def test_grpc_start_watch_and_lookup(
    stub: trainer_pb2_grpc.TrainerStub, ctx: ServiceContext, manager: RunManager, make_job: MakeJob
) -> None:
    job = make_job(steps=4)
    run_id = stub.StartRun(job).run_id
    assert run_id == jobs.derive_run_id(job)
    updates = list(stub.GetRun(trainer_pb2.RunRef(run_id=run_id), timeout=120))
    assert updates[-1].state == "done" and updates[-1].result.steps == 4
    assert [u.step for u in updates if u.state == "running"] == sorted(
        u.step for u in updates if u.state == "running"
    )
    assert _results(ctx)[-1].run_id == run_id  # gRPC-started runs are announced too
    # a fresh process answers from result.json when given the study
    manager._runs.clear()
    (again,) = stub.GetRun(trainer_pb2.RunRef(run_id=run_id, study_id=job.study_id))
    assert again.state == "done" and again.result.run_id == run_id


def test_grpc_cancel_and_errors(stub: trainer_pb2_grpc.TrainerStub, make_job: MakeJob) -> None:
    with pytest.raises(grpc.RpcError) as err:
        stub.StartRun(make_job(n_per_class=500))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "n_per_class" in err.value.details()
    with pytest.raises(grpc.RpcError) as err:
        stub.CancelRun(trainer_pb2.RunRef(run_id="nope"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND

    run_id = stub.StartRun(make_job(steps=100_000, eval_limit=10)).run_id
    stream = stub.GetRun(trainer_pb2.RunRef(run_id=run_id), timeout=120)
    for update in stream:
        if update.state == "running" and update.step >= 2:
            break
    stub.CancelRun(trainer_pb2.RunRef(run_id=run_id))
    final = list(stub.GetRun(trainer_pb2.RunRef(run_id=run_id), timeout=120))[-1]
    assert final.state == "cancelled" and 2 <= final.step < 100_000


def test_one_run_at_a_time(manager: RunManager, make_job: MakeJob, monkeypatch: pytest.MonkeyPatch) -> None:
    import synscale_trainer.runs as runs_mod

    original = runs_mod.run_training
    active: list[int] = []
    peak = [0]
    lock = threading.Lock()

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        with lock:
            active.append(1)
            peak[0] = max(peak[0], len(active))
        try:
            return original(*args, **kwargs)
        finally:
            with lock:
                active.pop()

    monkeypatch.setattr(runs_mod, "run_training", counting)
    started = [manager.start(make_job(steps=2, seed=seed)) for seed in (1, 2)]
    for run_id in started:
        assert list(manager.watch(run_id))[-1].state == "done"
    assert peak[0] == 1
