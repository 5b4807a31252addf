"""The bus contract, and the consume loop both implementations share.

Semantics (identical for Kafka and memory):
- keyed publish: equal keys land on the same partition, so per-key order holds;
- consumer groups split a topic's partitions between their members;
- at-least-once: an offset is committed only after the handler returned and every
  message the handler published was flushed; a crash before that means redelivery;
- bounded retries with exponential backoff, then a DeadLetter (original bytes plus the
  error) on the dead-letter topic, after which the worker moves on;
- graceful shutdown: stop() lets the message in hand finish and commits it.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from synscale.errors import SynscaleError, Unavailable

log = logging.getLogger(__name__)

DLQ_SUFFIX = ".dlq"


class BusError(SynscaleError):
    """Any failure of the message bus."""


class BusUnavailable(BusError, Unavailable):
    """The broker could not be reached."""


@dataclass(frozen=True)
class Message:
    topic: str
    value: bytes
    key: bytes | None
    partition: int
    offset: int
    headers: tuple[tuple[str, bytes], ...] = ()


Handler = Callable[[Message], None]


@dataclass(frozen=True)
class ConsumerOptions:
    """How a group member fetches: long handlers (training runs) want one record at a time
    and a poll interval longer than the handler, or Kafka evicts them and redelivers."""

    max_poll_records: int = 100
    max_poll_interval_s: float = 600.0


class PoisonMessage(BusError):
    """Raised by a handler for input that can never succeed: dead-lettered without retries."""


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 3
    initial_backoff_s: float = 0.05
    max_backoff_s: float = 5.0
    multiplier: float = 2.0

    def backoff(self, attempt: int) -> float:
        """Delay before retry number `attempt` (1-based)."""
        return float(min(self.max_backoff_s, self.initial_backoff_s * self.multiplier ** (attempt - 1)))


def as_key(key: bytes | str | None) -> bytes | None:
    if key is None or isinstance(key, bytes):
        return key
    if isinstance(key, str):
        return key.encode()
    raise TypeError(f"message key must be bytes, str or None, got {type(key).__name__}")


def dead_letter_topic(topic: str) -> str:
    return topic + DLQ_SUFFIX


class Bus(ABC):
    """Publish/subscribe with consumer groups; topics are created with explicit partitions."""

    default_partitions: int = 6

    @abstractmethod
    def ensure_topic(self, name: str, partitions: int | None = None) -> None:
        """Create the topic if missing (idempotent)."""

    @abstractmethod
    def publish(
        self, topic: str, value: bytes, key: bytes | str | None = None,
        headers: Sequence[tuple[str, bytes]] = (),
    ) -> None:
        """Queue a message; it is durable once flush() returns."""

    @abstractmethod
    def flush(self, timeout_s: float | None = None) -> None:
        """Block until every published message is acknowledged."""

    @abstractmethod
    def subscribe(
        self, topics: Sequence[str], group: str, handler: Handler, *,
        retry: RetryPolicy | None = None, dead_letters: bool = True,
        options: ConsumerOptions | None = None,
    ) -> Worker:
        """A worker that feeds the group's share of `topics` to `handler`."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


class Worker(ABC):
    """One member of a consumer group running the shared at-least-once loop."""

    def __init__(
        self, bus: Bus, topics: Sequence[str], group: str, handler: Handler,
        retry: RetryPolicy | None, dead_letters: bool,
    ) -> None:
        if not topics:
            raise BusError("subscribe needs at least one topic")
        self.bus = bus
        self.topics = list(topics)
        self.group = group
        self.handler = handler
        self.retry = retry or RetryPolicy()
        self.dead_letters = dead_letters
        self._stop = threading.Event()
        self.handled = 0
        self.dead_lettered = 0

    @abstractmethod
    def _poll(self, timeout_s: float) -> list[Message]:
        """Next messages of this member's partitions (may be empty)."""

    @abstractmethod
    def _commit(self, messages: Sequence[Message]) -> None:
        """Mark these messages done for the group."""

    @abstractmethod
    def _rewind(self, first_unprocessed: dict[tuple[str, int], int]) -> None:
        """Make the next poll return these (topic, partition) from the given offsets."""

    @abstractmethod
    def _close(self) -> None:
        """Leave the group."""

    def stop(self) -> None:
        """Ask run() to return after the message in hand."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run(
        self, *, max_messages: int | None = None, idle_timeout_s: float | None = None,
        poll_timeout_s: float = 0.2,
    ) -> int:
        """Consume until stop(), `max_messages` handled, or nothing arrived for `idle_timeout_s`."""
        done = 0
        last_activity = time.monotonic()
        while not self._stop.is_set():
            batch = self._poll(poll_timeout_s)
            if not batch:
                if idle_timeout_s is not None and time.monotonic() - last_activity >= idle_timeout_s:
                    break
                continue
            processed: list[Message] = []
            for message in batch:
                if self._stop.is_set() or (max_messages is not None and done >= max_messages):
                    break
                self._process(message)
                processed.append(message)
                done += 1
            self.bus.flush()  # what the handlers published must be durable before we commit
            self._commit(processed)
            rest = batch[len(processed):]
            if rest:
                first: dict[tuple[str, int], int] = {}
                for m in rest:
                    first.setdefault((m.topic, m.partition), m.offset)
                self._rewind(first)
            last_activity = time.monotonic()
            if max_messages is not None and done >= max_messages:
                break
        return done

    def _process(self, message: Message) -> None:
        attempt = 0
        while True:
            attempt += 1
            try:
                self.handler(message)
                self.handled += 1
                return
            except PoisonMessage as exc:
                self._dead_letter(message, exc, attempt)
                return
            except Exception as exc:
                if attempt >= self.retry.max_attempts:
                    self._dead_letter(message, exc, attempt)
                    return
                delay = self.retry.backoff(attempt)
                log.warning("handler failed on %s[%d]@%d (attempt %d/%d): %s; retrying in %.2fs",
                            message.topic, message.partition, message.offset, attempt,
                            self.retry.max_attempts, exc, delay)
                time.sleep(delay)

    def _dead_letter(self, message: Message, exc: BaseException, attempts: int) -> None:
        from synscale.v1 import common_pb2

        reason = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        log.error("dead-lettering %s[%d]@%d after %d attempt(s): %s",
                  message.topic, message.partition, message.offset, attempts, reason)
        if not self.dead_letters:
            raise BusError(f"handler failed on {message.topic}@{message.offset}: {reason}") from exc
        letter = common_pb2.DeadLetter(
            topic=message.topic, partition=message.partition, offset=message.offset,
            key=message.key or b"", value=message.value, error=reason[:4000], attempts=attempts,
            failed_at=datetime.now(UTC).isoformat(), consumer_group=self.group,
        )
        self.bus.publish(dead_letter_topic(message.topic), letter.SerializeToString(), key=message.key)
        self.dead_lettered += 1

    def close(self) -> None:
        self._stop.set()
        self._close()

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
