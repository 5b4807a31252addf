"""The Kafka worker over the in-memory bus, and the gRPC servicer over a real server."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import grpc
import pytest

from synscale.bus.base import dead_letter_topic
from synscale.bus.memory import MemoryBus
from synscale.grpc_server import build_server, check_health
from synscale.runtime import ServiceContext
from synscale.v1 import common_pb2, generator_pb2, generator_pb2_grpc, study_pb2
from synscale_generator.servicer import bindings
from synscale_generator.worker import GROUP, subscriptions

Job = Callable[..., generator_pb2.GenerationJob]
Spec = Callable[..., study_pb2.GeneratorSpec]


def published(ctx: ServiceContext, logical: str) -> list[bytes]:
    return published_raw(ctx, ctx.topics.name(logical))


def run_worker(ctx: ServiceContext, jobs: list[bytes]) -> int:
    (sub,) = subscriptions(ctx)
    assert sub.group == GROUP and sub.topics == ("generation-jobs",)
    for value in jobs:
        ctx.publish("generation-jobs", value, key=b"k")
    assert sub.options.max_poll_records == 1
    worker = ctx.bus.subscribe([ctx.topics.name(t) for t in sub.topics], sub.group, sub.handler,
                               retry=sub.retry, options=sub.options)
    return worker.run(max_messages=len(jobs), idle_timeout_s=1.0)


def test_worker_writes_shards_dead_letters_bad_jobs_and_goes_on(
    memory_ctx: ServiceContext, job_for: Job, spec_for: Spec,
) -> None:
    good = job_for("bag", n=2)
    bad_cfg = job_for("coat", n=2, cfg=-3.0)
    missing = job_for(spec=spec_for(backend="sd", model_path="/nonexistent/sd15"))
    handled = run_worker(memory_ctx, [b"\x08\xff\xff", bad_cfg.SerializeToString(),
                                      missing.SerializeToString(), good.SerializeToString(),
                                      good.SerializeToString()])
    assert handled == 5
    ready = [generator_pb2.ShardReady.FromString(v) for v in published(memory_ctx, "shards-ready")]
    assert [(r.shard.job.class_id, r.reannounced) for r in ready] == [("bag", False), ("bag", True)]
    assert memory_ctx.store.exists(ready[0].shard.key)
    letters = [common_pb2.DeadLetter.FromString(v) for v in
               published_raw(memory_ctx, dead_letter_topic(memory_ctx.topics.name("generation-jobs")))]
    reasons = [letter.error for letter in letters]
    assert len(reasons) == 3 and all(letter.attempts == 1 for letter in letters)
    assert "not a synscale.v1.GenerationJob" in reasons[0]
    assert "InvalidInput: job.cell.cfg: CFG must be >= 0" in reasons[1]
    assert "PreconditionFailed: generator.model_path: /nonexistent/sd15 does not exist" in reasons[2]


def published_raw(ctx: ServiceContext, topic: str) -> list[bytes]:
    assert isinstance(ctx.bus, MemoryBus)
    return [m.value for m in ctx.bus.messages(topic)]


@pytest.fixture
def generator_stub(memory_ctx: ServiceContext) -> Iterator[tuple[generator_pb2_grpc.GeneratorStub, str]]:
    server, port, _health = build_server(bindings(memory_ctx))
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield generator_pb2_grpc.GeneratorStub(channel), f"127.0.0.1:{port}"
    finally:
        channel.close()
        server.stop(None)


def test_generate_streams_progress_and_the_shard(
    generator_stub: tuple[generator_pb2_grpc.GeneratorStub, str], memory_ctx: ServiceContext, job_for: Job,
) -> None:
    stub, target = generator_stub
    assert check_health(target, "synscale.v1.Generator")
    job = job_for("sneaker", n=5)  # batch size 4: two batches
    stream = list(stub.Generate(generator_pb2.GenerateRequest(job=job), timeout=120))
    assert [(p.done, p.total) for p in stream if not p.HasField("shard")] == [(4, 5), (5, 5)]
    shards = [p.shard for p in stream if p.HasField("shard")]
    assert len(shards) == 1 and shards[0].count == 5 and memory_ctx.store.exists(shards[0].key)
    again = list(stub.Generate(generator_pb2.GenerateRequest(job=job), timeout=60))
    assert len(again) == 1 and again[0].reannounced and again[0].shard.sha256 == shards[0].sha256
    announced = [generator_pb2.ShardReady.FromString(v) for v in published(memory_ctx, "shards-ready")]
    assert [a.reannounced for a in announced] == [False, True]
    described = stub.Describe(generator_pb2.DescribeRequest(), timeout=10)
    assert {"embedded", "sd", "sdxl", "deepfloyd_if", "amused", "auto"} <= set(described.backends)
    assert described.device == "cpu" and described.batch_size == 4
    assert any(m.startswith("standin:") for m in described.loaded_models)


def test_generate_maps_bad_input_and_missing_weights_to_status_codes(
    generator_stub: tuple[generator_pb2_grpc.GeneratorStub, str], job_for: Job, spec_for: Spec,
) -> None:
    stub, _target = generator_stub
    cases = [
        (job_for(spec=spec_for(backend="nope")), grpc.StatusCode.INVALID_ARGUMENT, "generator.backend"),
        (job_for(spec=spec_for(resolution=30)), grpc.StatusCode.INVALID_ARGUMENT, "multiple of 8"),
        (job_for(spec=spec_for(backend="sd", model_path="/nonexistent")),
         grpc.StatusCode.FAILED_PRECONDITION, "does not exist"),
    ]
    for job, code, text in cases:
        with pytest.raises(grpc.RpcError) as err:
            list(stub.Generate(generator_pb2.GenerateRequest(job=job), timeout=30))
        assert err.value.code() == code and text in err.value.details()
    with pytest.raises(grpc.RpcError) as err:
        list(stub.Generate(generator_pb2.GenerateRequest(), timeout=30))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
