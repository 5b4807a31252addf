"""The consume loop's two kinds of failure (ADR 0014), on the in-memory bus.

Transient failures (an outage) are waited out without limit, never use up a message's
attempts and never dead-letter; permanent ones are dead-lettered after their attempts,
with the failure's class name as reason.
"""

from __future__ import annotations

import random
import threading
from typing import Any

import pytest

from synscale.bus.base import (
    DLQ_REASON_HEADER,
    BusUnavailable,
    Message,
    PoisonMessage,
    RetryPolicy,
    Worker,
    WorkerEvents,
    dead_letter_topic,
)
from synscale.bus.memory import MemoryBus
from synscale.errors import InvalidInput, is_transient
from synscale.store.base import StoreError, StoreUnavailable
from synscale.v1 import common_pb2

FAST = RetryPolicy(max_attempts=2, initial_backoff_s=0.001, transient_initial_s=0.001,
                   transient_max_s=0.004)


class Recorder(WorkerEvents):
    def __init__(self) -> None:
        self.log: list[str] = []

    def degraded(self, worker: Worker, reason: str) -> None:
        self.log.append("degraded")

    def recovered(self, worker: Worker) -> None:
        self.log.append("recovered")

    def dead_lettered(self, worker: Worker, message: Message, kind: str) -> None:
        self.log.append(f"dead:{kind}")


def test_is_transient_draws_the_line() -> None:
    assert is_transient(StoreUnavailable("down"))
    assert is_transient(BusUnavailable("down"))
    assert is_transient(TimeoutError())
    assert is_transient(ConnectionRefusedError())
    try:  # a handler wrapping an outage in its own error still failed because of it
        try:
            raise StoreUnavailable("down")
        except StoreUnavailable as exc:
            raise RuntimeError("loader failed") from exc
    except RuntimeError as wrapped:
        assert is_transient(wrapped)
    assert not is_transient(PoisonMessage("bad"))
    assert not is_transient(InvalidInput("x", "bad"))
    assert not is_transient(StoreError("S3 put failed: InvalidArgument"))
    assert not is_transient(ValueError("bug"))
    from kafka.errors import KafkaTimeoutError, UnknownTopicOrPartitionError

    assert is_transient(KafkaTimeoutError())
    assert not is_transient(__import__("kafka.errors").errors.InvalidTopicError())
    assert is_transient(UnknownTopicOrPartitionError())  # retriable per kafka-python


def test_transient_backoff_is_capped_exponential_with_jitter() -> None:
    p = RetryPolicy(transient_initial_s=0.5, transient_max_s=8.0, jitter=0.5)
    rng = random.Random(3)
    delays = [p.transient_backoff(n, rng) for n in range(1, 12)]
    ceilings = [min(8.0, 0.5 * 2 ** (n - 1)) for n in range(1, 12)]
    assert all(c * 0.5 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    assert max(delays) <= 8.0
    assert len({round(d, 6) for d in delays[5:]}) > 1, "capped delays must still be jittered"
    with pytest.raises(ValueError, match="jitter"):
        RetryPolicy(jitter=2.0)


def _run_one(bus: MemoryBus, handler: Any, topic: str = "t") -> tuple[Worker, Recorder]:
    worker = bus.subscribe([topic], "g", handler, retry=FAST)
    events = Recorder()
    worker.events = events
    worker.run(idle_timeout_s=0.3, poll_timeout_s=0.05)
    worker.close()
    return worker, events


def test_an_outage_longer_than_every_attempt_budget_is_waited_out_not_dead_lettered() -> None:
    bus = MemoryBus(1)
    bus.publish("t", b"job", key="k")
    calls = {"n": 0}

    def handler(m: Message) -> None:
        calls["n"] += 1
        if calls["n"] <= 25:  # 25 failures, the budget is 2
            raise StoreUnavailable("S3 endpoint is unreachable")

    worker, events = _run_one(bus, handler)
    assert worker.handled == 1 and worker.dead_lettered == 0
    assert worker.transient_failures == 25
    assert events.log == ["degraded", "recovered"]
    assert worker.degraded_reason == ""
    assert bus.messages(dead_letter_topic("t")) == []
    assert bus.lag("t", "g") == 0


def test_permanent_failures_are_dead_lettered_after_their_attempts_even_between_outages() -> None:
    bus = MemoryBus(1)
    bus.publish("t", b"bad", key="k")
    calls: list[str] = []

    def handler(m: Message) -> None:
        calls.append("call")
        if len(calls) % 2:  # outage, bug, outage, bug: only the bugs count
            raise StoreUnavailable("down")
        raise ValueError("this message can never work")

    worker, events = _run_one(bus, handler)
    assert len(calls) == 4  # 2 attempts, each preceded by a waited-out outage
    assert worker.dead_lettered == 1
    assert events.log[-1] == "dead:ValueError"
    (letter_msg,) = bus.messages(dead_letter_topic("t"))
    letter = common_pb2.DeadLetter.FromString(letter_msg.value)
    assert letter.value == b"bad" and letter.attempts == 2 and "ValueError" in letter.error
    assert dict(letter_msg.headers)[DLQ_REASON_HEADER] == b"ValueError"
    assert bus.lag("t", "g") == 0


def test_poison_is_dead_lettered_at_once() -> None:
    bus = MemoryBus(1)
    bus.publish("t", b"junk")
    worker, events = _run_one(bus, lambda m: (_ for _ in ()).throw(PoisonMessage("not a job")))
    assert worker.dead_lettered == 1 and events.log == ["dead:PoisonMessage"]


def test_stop_during_an_outage_leaves_the_message_uncommitted() -> None:
    bus = MemoryBus(1)
    bus.publish("t", b"job")
    started = threading.Event()

    def handler(m: Message) -> None:
        started.set()
        raise StoreUnavailable("down")

    worker = bus.subscribe(["t"], "g", handler, retry=FAST)
    thread = threading.Thread(target=worker.run, kwargs={"poll_timeout_s": 0.05})
    thread.start()
    assert started.wait(5)
    worker.stop()
    thread.join(5)
    assert not thread.is_alive()
    assert worker.dead_lettered == 0 and worker.handled == 0
    assert bus.lag("t", "g") == 1, "abandoned mid-outage: redelivered to the next member"
    worker.close()
    again = bus.subscribe(["t"], "g", lambda m: None, retry=FAST)
    assert again.run(max_messages=1, idle_timeout_s=2) == 1


class FlakyFlushBus(MemoryBus):
    """A bus whose first flush reports undelivered messages, as Kafka's does in an outage."""

    def __init__(self) -> None:
        super().__init__(1)
        self.failures = 1

    def flush(self, timeout_s: float | None = None) -> None:
        if self.failures:
            self.failures -= 1
            raise BusUnavailable("1 of 1 message(s) not delivered")


def test_undelivered_output_means_the_message_is_handled_again_not_committed() -> None:
    bus = FlakyFlushBus()
    bus.publish("t", b"job")
    seen: list[bytes] = []
    worker, _ = _run_one(bus, lambda m: seen.append(m.value))
    assert seen == [b"job", b"job"] and worker.handled == 2
    assert bus.lag("t", "g") == 0
