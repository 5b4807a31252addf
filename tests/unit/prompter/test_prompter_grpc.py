"""The Prompter gRPC service on a real in-process server (127.0.0.1, ephemeral port)."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest

from synscale.bus.memory import MemoryBus
from synscale.grpc_server import build_server, check_health
from synscale.runtime import ServiceContext
from synscale.store.file import FileStore
from synscale.v1 import common_pb2, prompter_pb2, prompter_pb2_grpc
from synscale_prompter.config import PrompterConfig
from synscale_prompter.servicer import PrompterServicer, bindings


@pytest.fixture
def served(tmp_path) -> Iterator[tuple[prompter_pb2_grpc.PrompterStub, str]]:  # type: ignore[no-untyped-def]
    config = PrompterConfig(max_n=50, max_total=120)
    store = FileStore(tmp_path / "store", "grpc-test")
    servicer = PrompterServicer(config, store=store)
    binding = bindings(ServiceContext(MemoryBus(), store))[0]
    server, port, _ = build_server(
        [type(binding)(binding.add_to_server, servicer, binding.full_name)], "127.0.0.1:0")
    target = f"127.0.0.1:{port}"
    channel = grpc.insecure_channel(target)
    try:
        yield prompter_pb2_grpc.PrompterStub(channel), target
    finally:
        channel.close()
        server.stop(None)


def request(**fields) -> prompter_pb2.BuildPromptsRequest:  # type: ignore[no-untyped-def]
    base = {"class_set": "imagenet", "strategy": "classname", "n": 2}
    return prompter_pb2.BuildPromptsRequest(**{**base, **fields})


def test_health_and_listings(served) -> None:  # type: ignore[no-untyped-def]
    stub, target = served
    assert check_health(target, "synscale.v1.Prompter")
    strategies = stub.ListStrategies(prompter_pb2.ListStrategiesRequest()).strategies
    assert [(s.name, s.needs_model) for s in strategies] == [
        ("classname", False), ("classname_description", False), ("classname_hypernym", False),
        ("clip_templates", False), ("word2sen", True), ("in_captions", True)]
    sets = stub.ListClassSets(prompter_pb2.ListClassSetsRequest()).class_sets
    assert [(s.name, s.num_classes) for s in sets] == [
        ("imagenet", 1000), ("fashion-mnist", 10), ("custom", 0)]


def test_build_prompts(served) -> None:  # type: ignore[no-untyped-def]
    stub, _ = served
    reply = stub.BuildPrompts(request(strategy="classname_hypernym", class_ids=["n01440764", "n07753592"],
                                      n=3, index_start=10))
    assert [(p.class_id, p.index, p.text) for p in reply.prompts] == [
        ("n01440764", 10, "tench, cyprinid"), ("n01440764", 11, "tench, cyprinid"),
        ("n01440764", 12, "tench, cyprinid"), ("n07753592", 10, "banana, edible fruit"),
        ("n07753592", 11, "banana, edible fruit"), ("n07753592", 12, "banana, edible fruit")]
    templated = {"class_set": "fashion-mnist", "strategy": "clip_templates", "n": 5, "seed": 3}
    seeded = stub.BuildPrompts(request(**templated))
    assert len(seeded.prompts) == 50 and seeded.prompts[0].class_id == "tshirt"
    assert stub.BuildPrompts(request(**templated)) == seeded
    as_study = stub.BuildPrompts(request(**templated, study_id="study-x"))
    assert as_study != seeded
    custom = stub.BuildPrompts(request(class_set="custom", classes=[
        common_pb2.ClassInfo(id="a", name="apple", description="a red fruit")],
        strategy="classname_description", n=1))
    assert [p.text for p in custom.prompts] == ["apple, a red fruit"]


@pytest.mark.parametrize(("fields", "start"), [
    ({"strategy": "poetry"}, "strategy: unknown strategy 'poetry'"),
    ({"strategy": ""}, "strategy: unknown strategy ''"),
    ({"class_ids": ["n01440764", "n00000000"]}, "class_ids[1]: unknown class 'n00000000'"),
    ({"n": 0}, "n: must be in 1..50, got 0"),
    ({"n": -3}, "n: must be in 1..50, got -3"),
    ({"n": 51, "class_ids": ["n01440764"]}, "n: must be in 1..50, got 51"),
    ({"n": 50}, "n: 50 prompts x 1000 classes exceeds the limit of 120"),
    ({"class_set": ""}, "class_set: is empty"),
    ({"class_set": "cifar10"}, "class_set: unknown class set 'cifar10'"),
    ({"class_set": "custom"}, "classes: class set 'custom' needs classes"),
    ({"class_set": "custom", "classes": [common_pb2.ClassInfo(id="a", name="x"),
                                         common_pb2.ClassInfo(id="a", name="y")]},
     "classes: entry 1 (id 'a').id: duplicate id, first used by entry 0"),
    ({"class_set": "custom", "classes": [common_pb2.ClassInfo(id="a", name="")]},
     "classes: entry 0 (id 'a').name: name is empty"),
    ({"class_set": "custom", "classes": [common_pb2.ClassInfo(id="n99999999", name="ghost")]},
     "classes: entry 0 (id 'n99999999').id: unknown WordNet id"),
    ({"class_set": "custom", "classes": [common_pb2.ClassInfo(id="a", name="apple")],
      "strategy": "classname_hypernym"}, "classes[0].hypernym: class 'a' (apple) has no hypernym"),
    ({"strategy": "word2sen", "class_ids": ["n01440764"]}, "word2sen_model: needs a local model directory"),
    ({"strategy": "in_captions", "class_ids": ["n01440764"], "captioner_model": "/nonexistent"},
     "captioner_model: /nonexistent is not a transformers model directory"),
    ({"index_start": -1, "class_ids": ["n01440764"]}, "index_start: must be >= 0"),
])
def test_bad_input_is_invalid_argument_naming_the_field(served, fields, start) -> None:  # type: ignore[no-untyped-def]
    stub, _ = served
    with pytest.raises(grpc.RpcError) as err:
        stub.BuildPrompts(request(**fields))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details().startswith(start), err.value.details()
