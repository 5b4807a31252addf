"""The worker over MemoryBus + FileStore, and the gRPC servicer, with tiny real models.

A 3-class study with 6 images per class arrives as 2 shards per class (3 images each);
the cell is aggregated when the last shard arrives and its ScoreResult published once.
"""

from __future__ import annotations

import grpc
import pytest

from synscale import layout
from synscale.bus.base import RetryPolicy
from synscale.bus.memory import MemoryBus
from synscale.grpc_server import build_server
from synscale.runtime import ServiceContext
from synscale.store.file import FileStore
from synscale.v1 import common_pb2, generator_pb2, scorer_pb2, scorer_pb2_grpc
from synscale_scorer import servicer as servicer_mod
from synscale_scorer.plan import Cell
from synscale_scorer.service import ScorerService, study_key
from synscale_scorer.worker import ShardReadyHandler, subscriptions

from .conftest import STUDY_YAML, make_shard, real_images

CELL = Cell("embedded", 2.0, "classname")
CLASSES = ("tshirt", "trouser", "sandal")


def _study(store: FileStore) -> str:
    from synscale.study import parse_study

    study_id = parse_study(STUDY_YAML).study_id
    store.put(study_key(study_id), STUDY_YAML.encode())
    return study_id


def _shard_ready(store: FileStore, study: str, class_id: str, start: int, count: int = 3) -> bytes:

    data = make_shard(study, CELL, class_id, start, real_images(class_id, count, start))
    key = layout.shard_key(study, CELL.generator, CELL.cfg, CELL.strategy, class_id, start, count)
    info = store.put(key, data)
    job = common_pb2.JobIdentity(study_id=study, cell=CELL.proto(), class_id=class_id,
                                 seed_start=start, seed_count=count)
    ref = common_pb2.ShardRef(bucket=store.bucket, key=key, sha256=info.sha256, count=count,
                              size_bytes=len(data), job=job)
    return generator_pb2.ShardReady(shard=ref).SerializeToString()


def test_coverage_rule() -> None:
    covered = layout.covers  # the one coverage rule (synscale.layout)
    assert covered([(0, 3), (3, 3)], 6) and covered([(3, 3), (0, 4)], 6)
    assert not covered([(0, 3), (4, 2)], 6) and not covered([], 1) and covered([], 0)


def test_worker_scores_the_cell_once_when_complete(store: FileStore, service: ScorerService) -> None:
    study = _study(store)
    bus = MemoryBus(2)
    ctx = ServiceContext(bus, store)
    handler = ShardReadyHandler(ctx, service)
    [sub] = subscriptions(ctx)
    assert sub.topics == ("shards-ready",) and sub.group == "scorer"
    events = [_shard_ready(store, study, c, s) for c in CLASSES for s in (0, 3)]
    topic = ctx.topics.name("shards-ready")
    for value in events[:-1]:
        bus.publish(topic, value, key=b"k")
    worker = bus.subscribe([topic], "scorer", handler, retry=RetryPolicy(max_attempts=1))
    worker.run(idle_timeout_s=0.2)
    plan = service.plan(study, CELL)
    assert len(service.partial_names(plan)) == 5 and not store.exists(plan.key("scores.json"))
    assert handler.published == 0

    bus.publish(topic, events[-1], key=b"k")
    worker.run(idle_timeout_s=0.2)
    results = [scorer_pb2.ScoreResult.FromString(m.value) for m in bus.messages(ctx.topics.name("scores"))]
    assert len(results) == 1
    r = results[0]
    assert r.scored == 18 and r.skipped == 0 and [c.class_id for c in r.classes] == list(CLASSES)
    assert all(c.n == 6 for c in r.classes) and 0 <= r.macro_f1 <= 1 and r.fid >= 0 and r.lpips > 0
    assert r.json_key == plan.key("scores.json") and store.exists(r.table_key)
    table = store.get(r.table_key).decode().splitlines()
    assert table[0] == "class,n,precision,recall,f1,diversity_std,lpips,fid" and len(table) == 4
    first_json = store.get(r.json_key)

    # redelivery of every event: no new partials, no second publication, same bytes
    for value in events:
        bus.publish(topic, value, key=b"k")
    worker.run(idle_timeout_s=0.2)
    assert len(bus.messages(ctx.topics.name("scores"))) == 1
    rescored = service.aggregate(plan)
    assert rescored.to_json() == first_json
    worker.close()


def test_poison_events_are_dead_lettered(store: FileStore, service: ScorerService) -> None:
    study = _study(store)
    bus = MemoryBus(1)
    ctx = ServiceContext(bus, store)
    topic = ctx.topics.name("shards-ready")
    bad_class = generator_pb2.ShardReady(shard=common_pb2.ShardRef(
        key="k.tar", job=common_pb2.JobIdentity(study_id=study, cell=CELL.proto(), class_id="coat",
                                                seed_start=0, seed_count=1)))
    for value in (b"\xff\x00garbage", bad_class.SerializeToString()):
        bus.publish(topic, value)
    handler = ShardReadyHandler(ctx, service)
    worker = bus.subscribe([topic], "scorer", handler, retry=RetryPolicy(max_attempts=1))
    worker.run(idle_timeout_s=0.2)
    letters = bus.messages(topic + ".dlq")
    assert len(letters) == 2
    errors = [common_pb2.DeadLetter.FromString(m.value).error for m in letters]
    assert "not a ShardReady" in errors[0] and "coat" in errors[1]
    worker.close()


@pytest.fixture
def grpc_stub(service: ScorerService):  # type: ignore[no-untyped-def]
    servicer = servicer_mod.ScorerServicer(service)
    from synscale.grpc_server import ServiceBinding

    server, port, _ = build_server([ServiceBinding(scorer_pb2_grpc.add_ScorerServicer_to_server,
                                                   servicer, "synscale.v1.Scorer")])
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    yield scorer_pb2_grpc.ScorerStub(channel)
    channel.close()
    server.stop(None)


def test_grpc_score_shards_then_get_scores(store: FileStore, service: ScorerService, grpc_stub) -> None:  # type: ignore[no-untyped-def]
    study = _study(store)
    refs = [generator_pb2.ShardReady.FromString(_shard_ready(store, study, c, 0)).shard
            for c in CLASSES[:2]]
    request = scorer_pb2.ScoreShardsRequest(study_id=study, cell=CELL.proto(), shards=refs)
    result = grpc_stub.ScoreShards(request)
    assert result.scored == 6 and [c.n for c in result.classes] == [3, 3, 0]
    again = grpc_stub.GetScores(scorer_pb2.GetScoresRequest(study_id=study, cell=CELL.proto()))
    assert again == result

    with pytest.raises(grpc.RpcError) as err:
        grpc_stub.ScoreShards(scorer_pb2.ScoreShardsRequest(study_id=study, cell=CELL.proto()))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "shards" in err.value.details()
    bad = common_pb2.ShardRef(key="x.tar", job=common_pb2.JobIdentity(class_id="tshirt", seed_count=0))
    with pytest.raises(grpc.RpcError) as err:
        grpc_stub.ScoreShards(scorer_pb2.ScoreShardsRequest(study_id=study, cell=CELL.proto(), shards=[bad]))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "shards[0].job" in err.value.details()
    with pytest.raises(grpc.RpcError) as err:
        grpc_stub.GetScores(scorer_pb2.GetScoresRequest(study_id="nope", cell=CELL.proto()))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_bindings_name_the_service(store: FileStore) -> None:
    [binding] = servicer_mod.bindings(ServiceContext(MemoryBus(1), store))
    assert binding.full_name == "synscale.v1.Scorer"
