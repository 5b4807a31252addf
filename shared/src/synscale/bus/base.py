"""The bus contract, and the consume loop both implementations share.

Semantics (identical for Kafka and memory):
- keyed publish: equal keys land on the same partition, so per-key order holds;
- consumer groups split a topic's partitions between their members;
- at-least-once: an offset is committed only after the handler returned and every
  message the handler published was flushed; a crash before that means redelivery;
- permanent failures: bounded retries with exponential backoff, then a DeadLetter
  (original bytes plus the error) on the dead-letter topic, after which the worker moves on;
- transient failures (synscale.errors.is_transient: store or broker down, timeouts,
  throttling, 5xx): retried with capped, jittered backoff for as long as they last, never
  dead-lettered, offset not committed, partitions paused, `degraded_reason` set (ADR 0014);
- graceful shutdown: stop() lets the message in hand finish and commits it (a message
  whose outage is being waited out is abandoned uncommitted and redelivered).
"""

from __future__ import annotations

import logging
import random
import threading
import time
import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from synscale.errors import SynscaleError, Unavailable, failure_kind, is_transient

log = logging.getLogger(__name__)

DLQ_SUFFIX = ".dlq"
DLQ_REASON_HEADER = "synscale-dlq-reason"  # the failure's class name, for filtering
# On a re-published study submission: "publish only the jobs whose shards are missing"
# (the analyzer's reconciler sends it; the prompter honours it; ADR 0016).
MISSING_ONLY_HEADER = "synscale-missing-only"
T = TypeVar("T")


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
    """How a worker retries a failing message (ADR 0014).

    Permanent failures (the message is bad) get `max_attempts` tries spaced by
    `backoff`, then a dead letter. Transient failures (an outage: see
    synscale.errors.is_transient) are not counted against `max_attempts`: the worker
    retries for as long as the outage lasts, spaced by `transient_backoff` — exponential
    from `transient_initial_s`, capped at `transient_max_s`, with jitter so a fleet of
    workers does not hammer a recovering server in lockstep.
    """

    max_attempts: int = 3
    initial_backoff_s: float = 0.05
    max_backoff_s: float = 5.0
    multiplier: float = 2.0
    transient_initial_s: float = 0.5
    transient_max_s: float = 30.0
    jitter: float = 0.5  # a delay d is drawn uniformly from [d * (1 - jitter), d]

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"RetryPolicy.max_attempts must be >= 1, got {self.max_attempts}")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError(f"RetryPolicy.jitter must be in [0, 1], got {self.jitter}")
        if self.transient_initial_s <= 0 or self.transient_max_s < self.transient_initial_s:
            raise ValueError("RetryPolicy needs 0 < transient_initial_s <= transient_max_s")

    def backoff(self, attempt: int) -> float:
        """Delay before retry number `attempt` (1-based) of a permanent failure."""
        return float(min(self.max_backoff_s, self.initial_backoff_s * self.multiplier ** (attempt - 1)))

    def transient_backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        """Delay before retry number `attempt` (1-based) during an outage (capped, jittered)."""
        growth = self.multiplier ** min(attempt - 1, 64)
        ceiling = min(self.transient_max_s, self.transient_initial_s * growth)
        draw = (rng or random).random()
        return float(ceiling * (1.0 - self.jitter * draw))


class _Stopped(Exception):
    """stop() was called while an outage was being waited out."""


class WorkerEvents:
    """What a worker tells its process: degraded / recovered / dead-lettered.

    The default does nothing; the service runner passes one that drives gRPC health and
    the metrics. Called from the worker's thread; implementations must be quick.
    """

    def degraded(self, worker: Worker, reason: str) -> None:
        """A transient failure: the worker waits it out, partitions paused."""

    def recovered(self, worker: Worker) -> None:
        """The dependency answers again: the worker consumes."""

    def dead_lettered(self, worker: Worker, message: Message, kind: str) -> None:
        """`message` went to its dead-letter topic; `kind` is the failure's class name."""


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

    def ping(self) -> None:  # noqa: B027 - optional hook
        """Raise BusUnavailable unless the broker answers now (in-process buses always do)."""

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
        self.events = WorkerEvents()
        self._stop = threading.Event()
        self._wake = threading.Event()  # retry_now(): the dependency is known to be back
        self.handled = 0
        self.dead_lettered = 0
        self.transient_failures = 0
        self.degraded_reason = ""  # non-empty while an outage is being waited out

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

    def _pause(self) -> None:  # noqa: B027 - optional hook
        """Stop fetching (an outage is being waited out); group membership stays."""

    def _resume(self) -> None:  # noqa: B027 - optional hook
        """Fetch again after _pause."""

    def _keepalive(self, seconds: float) -> None:
        """Wait `seconds` (or until stop() / retry_now()) while staying a live member of the group."""
        deadline = time.monotonic() + seconds
        while not self._stop.is_set() and not self._wake.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._wake.wait(min(left, 0.5))

    def retry_now(self) -> None:
        """Cut the current outage backoff short (the service's health ping saw the dependency answer)."""
        self._wake.set()

    def stop(self) -> None:
        """Ask run() to return after the message in hand (abandoned, uncommitted, mid-outage)."""
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
            try:
                batch = self._outlast("fetching messages", lambda: self._poll(poll_timeout_s))
            except _Stopped:
                break
            if not batch:
                if idle_timeout_s is not None and time.monotonic() - last_activity >= idle_timeout_s:
                    break
                continue
            processed: list[Message] = []
            for message in batch:
                if self._stop.is_set() or (max_messages is not None and done >= max_messages):
                    break
                if not self._process(message):
                    break  # stopped mid-outage: this message stays uncommitted
                processed.append(message)
                done += 1
            settled = self._settle(processed)
            rest = batch[len(processed):] if settled else batch
            if rest:
                first: dict[tuple[str, int], int] = {}
                for m in rest:
                    first.setdefault((m.topic, m.partition), m.offset)
                self._rewind(first)
            last_activity = time.monotonic()
            if max_messages is not None and done >= max_messages:
                break
        return done

    def _settle(self, processed: Sequence[Message]) -> bool:
        """Flush what the handlers published, then commit.

        False means "not committed: handle these messages again" — stopped mid-outage, or
        the flush reported messages the broker never took (they are gone from the
        producer, so only handling their source messages again can resend them).
        """
        try:
            self.bus.flush()
        except Exception as exc:
            if not is_transient(exc):
                raise
            self._wait_out("flushing published messages", exc, 1)
            if self.degraded_reason:
                self._recovered()  # the redelivered messages will find out whether it is over
            return False
        try:
            if processed:
                self._outlast("committing offsets", lambda: self._commit(processed))
            return True
        except _Stopped:
            return False
        except BusError as exc:  # e.g. the group rebalanced: the new owner gets them again
            log.warning("commit of %d message(s) on %s failed (%s); they will be redelivered",
                        len(processed), self.group, exc)
            return True

    def _outlast(self, what: str, call: Callable[[], T]) -> T:
        """Run `call`, waiting out transient failures; raises _Stopped when stop() came first."""
        outage = 0
        while True:
            try:
                value = call()
            except Exception as exc:
                if not is_transient(exc):
                    raise
                outage += 1
                if not self._wait_out(what, exc, outage):
                    raise _Stopped from None
                continue
            if outage and self.degraded_reason:
                self._recovered()
            return value

    def _process(self, message: Message) -> bool:
        """Handle one message to an end (handled or dead-lettered); False if stopped mid-outage."""
        attempt = 0  # permanent failures only: an outage never uses up a message's attempts
        outage = 0
        where = f"{message.topic}[{message.partition}]@{message.offset}"
        while True:
            try:
                self.handler(message)
            except PoisonMessage as exc:
                return self._dead_letter(message, exc, attempt + 1)
            except Exception as exc:
                if is_transient(exc):
                    outage += 1
                    if not self._wait_out(f"handling {where}", exc, outage):
                        return False
                    continue
                attempt += 1
                if attempt >= self.retry.max_attempts:
                    return self._dead_letter(message, exc, attempt)
                delay = self.retry.backoff(attempt)
                log.warning("handler failed on %s (attempt %d/%d): %s; retrying in %.2fs",
                            where, attempt, self.retry.max_attempts, exc, delay)
                if self._stop.wait(delay):
                    return False
                continue
            self.handled += 1
            if self.degraded_reason:
                self._recovered()
            return True

    def _wait_out(self, what: str, exc: BaseException, outage: int) -> bool:
        """One backoff step of an outage, partitions paused; False when stop() came first."""
        self.transient_failures += 1
        reason = f"{what}: {failure_kind(exc)}: {exc}"[:500]
        if outage == 1 or not self.degraded_reason:
            log.warning("dependency unavailable while %s; pausing and retrying until it answers",
                        reason)
            self.degraded_reason = reason
            self._call_quietly(self._pause)
            self.events.degraded(self, reason)
        delay = self.retry.transient_backoff(outage)
        if outage > 1:
            log.info("still unavailable (%d tries) while %s; next try in %.1fs", outage, reason, delay)
        self._wake.clear()
        self._keepalive(delay)
        if self._wake.is_set() and self.degraded_reason:
            # The service saw every dependency answer: serve again while this message is
            # retried (a training run may take minutes before it can say it succeeded).
            self._recovered()
        return not self._stop.is_set()

    def _recovered(self) -> None:
        log.info("dependency answers again; %s resumes consuming", self.group)
        self.degraded_reason = ""
        self._call_quietly(self._resume)
        self.events.recovered(self)

    @staticmethod
    def _call_quietly(fn: Callable[[], None]) -> None:
        try:
            fn()
        except Exception as exc:  # pausing is an optimisation; the loop is correct without it
            log.debug("pause/resume failed: %s", exc)

    def _dead_letter(self, message: Message, exc: BaseException, attempts: int) -> bool:
        """Publish the letter (waiting out a broker outage); False when stopped first."""
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
        data = letter.SerializeToString()
        try:
            self._outlast("dead-lettering", lambda: self.bus.publish(
                dead_letter_topic(message.topic), data, key=message.key,
                headers=[(DLQ_REASON_HEADER, failure_kind(exc).encode())]))
        except _Stopped:
            return False
        self.dead_lettered += 1
        self.events.dead_lettered(self, message, failure_kind(exc))
        return True

    def close(self) -> None:
        self._stop.set()
        self._close()

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
