"""The consume loop waiting out an outage on a real broker, and dead letters read back.

- A handler whose store is "down" for longer than the member's max.poll.interval.ms: the
  member pauses its partitions, keeps polling, so the group keeps it; the message is then
  handled exactly once, committed, and nothing is dead-lettered.
- Poison is still dead-lettered after its attempts, with its reason header, and
  `synscale.dlq` reads the letter back and replays the original bytes exactly.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from synscale.bus.base import ConsumerOptions, Message, RetryPolicy, dead_letter_topic
from synscale.config import Topics
from synscale.dlq import REPLAYED_FROM_HEADER, dlq_topics, read_letters, replay
from synscale.store.base import StoreUnavailable

pytestmark = pytest.mark.infra
FAST = RetryPolicy(max_attempts=2, initial_backoff_s=0.01, transient_initial_s=0.2, transient_max_s=1.0)


def test_an_outage_longer_than_the_poll_interval_keeps_the_member_and_handles_once(
    kafka_bus: Any, unique: str,
) -> None:
    topic, group = f"outage-{unique}", f"g-{unique}"
    kafka_bus.ensure_topic(topic, 2)
    kafka_bus.publish(topic, b"job", key="k")
    kafka_bus.flush()
    outage_s = 8.0  # twice the member's max.poll.interval below
    calls: list[float] = []
    paused: list[int] = []
    worker: Any = None

    def handler(m: Message) -> None:
        calls.append(time.monotonic())
        if len(calls) > 1:
            paused.append(len(worker.consumer.paused()))
        if calls[-1] - calls[0] < outage_s:
            raise StoreUnavailable("S3 endpoint is unreachable (simulated)")

    worker = kafka_bus.subscribe([topic], group, handler, retry=FAST,
                                 options=ConsumerOptions(max_poll_records=1, max_poll_interval_s=4.0))
    try:
        worker.run(max_messages=1, idle_timeout_s=60)
        again: list[Message] = []
        worker.handler = again.append  # a redelivery (eviction, uncommitted offset) would show here
        worker.run(idle_timeout_s=6)
    finally:
        worker.close()
    assert worker.handled == 1 and worker.dead_lettered == 0 and not again
    assert worker.transient_failures == len(calls) - 1 > 3
    assert paused and all(n == 2 for n in paused), "partitions were not paused during the outage"
    assert worker.degraded_reason == ""


def test_poison_is_dead_lettered_and_replayed_byte_for_byte(
    kafka_bus: Any, infra_env: dict[str, str], unique: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    topics = Topics(prefix=f"dlq-{unique}")
    topic = topics.name("generation-jobs")
    kafka_bus.ensure_topic(topic, 1)
    poison = bytes(range(256))  # any bytes, exactly
    kafka_bus.publish(topic, poison, key=b"\x00key")
    kafka_bus.flush()

    def never(m: Message) -> None:
        raise ValueError("this message can never work")

    worker = kafka_bus.subscribe([topic], f"g-{unique}", never, retry=FAST)
    try:
        worker.run(max_messages=1, idle_timeout_s=60)
    finally:
        worker.close()
    assert worker.dead_lettered == 1

    bootstrap = infra_env["KAFKA_BOOTSTRAP_SERVERS"]
    (letter,) = list(read_letters(bootstrap, dlq_topics(topics, ["generation-jobs"])))
    assert letter.dlq_topic == dead_letter_topic(topic) and letter.reason == "ValueError"
    assert (letter.letter.value, letter.letter.key, letter.letter.attempts) == (poison, b"\x00key", 2)
    assert letter.matches(None, "valueerror") and not letter.matches("some-study", None)

    # The operator's view: `synscale dlq list|show` with the deployment's environment.
    from synscale.cli import main

    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", bootstrap)
    monkeypatch.setenv("SYNSCALE_TOPIC_PREFIX", topics.prefix)
    capsys.readouterr()
    assert main(["dlq", "list", "--json", "--reason", "ValueError"]) == 0
    (row,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (row["id"], row["reason"], row["attempts"]) == (letter.id, "ValueError", 2)
    assert main(["dlq", "show", "--id", letter.id]) == 0
    shown = capsys.readouterr().out
    assert f"== {letter.id}" in shown and "value: 256 bytes" in shown and "never work" in shown
    assert main(["dlq", "list", "--reason", "NoSuchReason"]) == 0
    assert "0 dead letter(s)" in capsys.readouterr().out

    assert replay(kafka_bus, [letter]) == 1
    copies: list[Message] = []
    reader = kafka_bus.subscribe([topic], f"r-{unique}", copies.append)
    try:
        reader.run(max_messages=2, idle_timeout_s=30)
    finally:
        reader.close()
    assert [(m.value, m.key) for m in copies] == [(poison, b"\x00key")] * 2
    assert dict(copies[1].headers)[REPLAYED_FROM_HEADER] == letter.id.encode()


def test_a_flush_that_times_out_drops_the_producer_and_the_next_send_gets_through(
    kafka_bus: Any, unique: str,
) -> None:
    """A flush is bounded; when it times out (after a broker restart kafka-python 3.0 can
    leave a batch whose future never completes) the producer is dropped, the worker gets
    BusUnavailable to wait out, and publishing afterwards works on a fresh producer."""
    from synscale.bus.base import BusUnavailable

    topic = f"flush-{unique}"
    kafka_bus.ensure_topic(topic, 1)
    kafka_bus.flush()
    stuck = kafka_bus._clients[0]
    kafka_bus.publish(topic, b"first", key="k")
    with pytest.raises(BusUnavailable, match="flush"):
        kafka_bus.flush(timeout_s=0)  # the batch cannot have been acknowledged in no time
    assert kafka_bus._clients is None  # the producer (and whatever it held) is gone
    kafka_bus.publish(topic, b"second", key="k")
    kafka_bus.flush()
    assert kafka_bus._clients[0] is not stuck
    assert kafka_bus.flush_timeout_s >= 30  # longer than kafka-python's own delivery timeout
