"""The bus contract, run identically against KafkaBus (real broker) and MemoryBus."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from synscale.bus.base import RetryPolicy, dead_letter_topic
from synscale.bus.memory import MemoryBus
from synscale.store.file import FileStore
from synscale.v1 import common_pb2

from .harness import KafkaHarness, MemoryHarness, wait_until

PARTITIONS = 6


@pytest.fixture(params=["memory", pytest.param("kafka", marks=pytest.mark.infra)])
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "memory":
        yield MemoryHarness(MemoryBus(), FileStore(tmp_path / "store", "contract"), tmp_path)
        return
    bus = request.getfixturevalue("kafka_bus")
    store = request.getfixturevalue("minio_store")
    yield KafkaHarness(bus, store, tmp_path, request.getfixturevalue("infra_env"))


def _publish(h: Any, topic: str, values: list[str]) -> None:
    for v in values:
        h.bus.publish(topic, v.encode(), key=f"key-{v}")
    h.bus.flush()


def _outputs(h: Any) -> set[str]:
    return {info.key.removeprefix("out/") for info in h.store.list("out/")}


def test_group_splits_partitions_and_survivor_takes_over(harness: Any, unique: str) -> None:
    h = harness
    topic, group = f"contract-split-{unique}", f"g-{unique}"
    h.bus.ensure_topic(topic, PARTITIONS)
    a = h.start(topic, group, sleep=0.05)
    b = h.start(topic, group, sleep=0.05)
    try:
        wait_until(lambda: len(h.assignment(a)) == 3 and len(h.assignment(b)) == 3,
                   what="both members to get 3 partitions")
        assert set(h.assignment(a)).isdisjoint(h.assignment(b))
        assert {p for _, p in h.assignment(a) + h.assignment(b)} == set(range(PARTITIONS))

        values = [f"v{i:03d}" for i in range(120)]
        _publish(h, topic, values)
        wait_until(lambda: len(_outputs(h)) >= 20, what="some progress before the kill")
        h.kill(a)
        wait_until(lambda: _outputs(h) == set(values), timeout_s=90, what="every message handled")
        wait_until(lambda: len(h.assignment(b)) == PARTITIONS, what="survivor to own all partitions")
    finally:
        h.stop(b)
    assert set(h.delivered()) == set(values)


def test_kill_mid_handler_redelivers_and_end_state_holds_message_once(harness: Any, unique: str) -> None:
    h = harness
    topic, group = f"contract-crash-{unique}", f"g-{unique}"
    h.bus.ensure_topic(topic, PARTITIONS)
    values = [f"m{i:02d}" for i in range(12)]
    _publish(h, topic, values)
    first = h.start(topic, group, crash_on="m05")
    wait_until(lambda: not h.alive(first), what="worker to die mid-handler")
    assert "m05" in _outputs(h), "the crash happens after the object write"
    second = h.start(topic, group)
    try:
        wait_until(lambda: _outputs(h) == set(values), what="all messages handled after restart")
        wait_until(lambda: h.delivered().count("m05") >= 2, what="m05 to be delivered again")
    finally:
        h.stop(second)
    keys = [info.key for info in h.store.list("out/")]
    assert sorted(keys) == sorted(f"out/{v}" for v in values)  # each exactly once
    assert h.store.get("out/m05") == b"m05"


def test_poison_message_is_dead_lettered_and_worker_goes_on(harness: Any, unique: str) -> None:
    h = harness
    topic, group = f"contract-poison-{unique}", f"g-{unique}"
    h.bus.ensure_topic(topic, PARTITIONS)
    for v in (b"ok-1", b"poison", b"ok-2"):
        h.bus.publish(topic, v, key="same-key")  # one partition: order is ok-1, poison, ok-2
    h.bus.flush()
    handled: list[bytes] = []

    def handle(message: Any) -> None:
        if message.value == b"poison":
            raise ValueError("cannot parse this payload")
        handled.append(message.value)

    worker = h.bus.subscribe([topic], group, handle,
                             retry=RetryPolicy(max_attempts=2, initial_backoff_s=0.01))
    worker.run(max_messages=3, idle_timeout_s=30)
    worker.close()
    assert handled == [b"ok-1", b"ok-2"]
    assert worker.dead_lettered == 1

    letters: list[common_pb2.DeadLetter] = []
    dlq = h.bus.subscribe([dead_letter_topic(topic)], f"dlq-{unique}",
                          lambda m: letters.append(common_pb2.DeadLetter.FromString(m.value)))
    dlq.run(max_messages=1, idle_timeout_s=30)
    dlq.close()
    assert len(letters) == 1
    letter = letters[0]
    assert letter.value == b"poison" and letter.key == b"same-key"
    assert letter.topic == topic and letter.attempts == 2 and letter.consumer_group == group
    assert "ValueError" in letter.error and "cannot parse this payload" in letter.error


def test_graceful_stop_commits_the_message_in_hand(harness: Any, unique: str) -> None:
    h = harness
    topic, group = f"contract-stop-{unique}", f"g-{unique}"
    h.bus.ensure_topic(topic, 1)
    _publish(h, topic, ["a", "b", "c", "d"])
    seen: list[bytes] = []
    worker = h.bus.subscribe([topic], group, lambda m: (seen.append(m.value), worker.stop()))
    worker.run(idle_timeout_s=30)
    worker.close()
    assert seen == [b"a"]
    rest: list[bytes] = []
    again = h.bus.subscribe([topic], group, lambda m: rest.append(m.value))
    again.run(max_messages=3, idle_timeout_s=30)
    again.close()
    assert rest == [b"b", b"c", b"d"]  # 'a' was committed on stop; nothing lost, nothing repeated


def test_keyed_messages_keep_order_within_a_key(harness: Any, unique: str) -> None:
    h = harness
    topic, group = f"contract-order-{unique}", f"g-{unique}"
    h.bus.ensure_topic(topic, PARTITIONS)
    for i in range(30):
        h.bus.publish(topic, f"{i % 3}:{i}".encode(), key=f"k{i % 3}")
    h.bus.flush()
    got: list[str] = []
    worker = h.bus.subscribe([topic], group, lambda m: got.append(m.value.decode()))
    worker.run(max_messages=30, idle_timeout_s=30)
    worker.close()
    for k in range(3):
        seq = [int(v.split(":")[1]) for v in got if v.startswith(f"{k}:")]
        assert seq == sorted(seq) and len(seq) == 10
