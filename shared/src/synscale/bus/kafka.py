"""Kafka implementation of the bus (kafka-python; crc32c makes large batches fast)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError
from kafka.structs import OffsetAndMetadata

from synscale.bus.base import (
    Bus,
    BusError,
    BusUnavailable,
    ConsumerOptions,
    Handler,
    Message,
    RetryPolicy,
    Worker,
    as_key,
)

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 8 * 1024 * 1024  # claim-check keeps events small; this is a guard


def _translate(what: str, where: str, exc: Exception) -> BusError:
    """One kafka-python error as ours: retriable ones (timeouts, no broker, not leader)
    are BusUnavailable, which the consume loop waits out; the rest are BusError."""
    if isinstance(exc, KafkaError) and not exc.retriable:
        return BusError(f"{what} at {where} failed: {exc}")
    return BusUnavailable(f"{what}: no Kafka broker answers at {where}: {exc}")


@contextmanager
def kafka_errors(what: str, where: str) -> Iterator[None]:
    """Every kafka-python call goes through here: nothing raw escapes to a worker (ADR 0014)."""
    try:
        yield
    except BusError:
        raise
    except (KafkaError, OSError) as exc:
        raise _translate(what, where, exc) from exc


class KafkaBus(Bus):
    """A producer shared by the process plus one KafkaConsumer per worker.

    `connect=False` builds the bus without reaching the broker (a service starting while
    Kafka is down): the clients are created on first use, and every use while the broker
    is unreachable raises BusUnavailable.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        *,
        client_id: str = "synscale",
        default_partitions: int = 6,
        session_timeout_ms: int = 10_000,
        request_timeout_ms: int = 15_000,
        replication_factor: int = 1,
        connect: bool = True,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.replication_factor = replication_factor
        self.client_id = client_id
        self.default_partitions = default_partitions
        self.session_timeout_ms = session_timeout_ms
        self.request_timeout_ms = request_timeout_ms
        self._known_topics: set[str] = set()
        self._lock = threading.Lock()
        self._admin_lock = threading.Lock()  # the health ping and topic creation share one client
        self._clients: tuple[KafkaProducer, KafkaAdminClient] | None = None
        self._sent = threading.local()  # each worker thread checks its own deliveries
        if connect:
            self._connect()

    def _connect(self) -> tuple[KafkaProducer, KafkaAdminClient]:
        with self._lock:
            if self._clients is not None:
                return self._clients
            timeout = self.request_timeout_ms
            try:
                producer = KafkaProducer(
                    bootstrap_servers=self.bootstrap_servers, client_id=self.client_id, acks="all",
                    linger_ms=5, retries=5, max_request_size=MAX_MESSAGE_BYTES,
                    request_timeout_ms=timeout, max_block_ms=timeout, bootstrap_timeout_ms=timeout,
                    delivery_timeout_ms=self._delivery_timeout_ms(),
                )
            except (KafkaError, OSError) as exc:
                raise BusUnavailable(f"no Kafka broker answers at {self.bootstrap_servers}: {exc}") from None
            try:
                admin = KafkaAdminClient(
                    bootstrap_servers=self.bootstrap_servers, client_id=f"{self.client_id}-admin",
                    request_timeout_ms=timeout, bootstrap_timeout_ms=timeout,
                )
            except (KafkaError, OSError) as exc:
                producer.close(timeout=1)
                raise BusUnavailable(f"no Kafka broker answers at {self.bootstrap_servers}: {exc}") from None
            self._clients = (producer, admin)
            return self._clients

    @property
    def _producer(self) -> KafkaProducer:
        return self._connect()[0]

    @property
    def _admin(self) -> KafkaAdminClient:
        return self._connect()[1]

    def ping(self) -> None:
        """Raise BusUnavailable unless a broker answers a metadata request now."""
        with kafka_errors("ping", self.bootstrap_servers), self._admin_lock:
            self._admin.describe_cluster()

    def ensure_topic(self, name: str, partitions: int | None = None) -> None:
        if name in self._known_topics:
            return
        where = self.bootstrap_servers
        try:
            with kafka_errors(f"create topic {name}", where), self._admin_lock:
                self._admin.create_topics(
                    [NewTopic(name, num_partitions=partitions or self.default_partitions,
                              replication_factor=self.replication_factor)]
                )
        except BusUnavailable:
            raise
        except BusError as exc:
            if not isinstance(exc.__cause__, TopicAlreadyExistsError) and \
                    "TopicAlreadyExists" not in str(exc):
                raise BusError(f"could not create topic {name}: {exc.__cause__ or exc}") from exc
        self._wait_for_metadata(name)
        self._known_topics.add(name)

    def _wait_for_metadata(self, name: str, timeout_s: float = 15.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with kafka_errors(f"metadata of {name}", self.bootstrap_servers):
                if self._producer.partitions_for(name):
                    return
            time.sleep(0.1)
        # Created (or already there) but not in metadata: the broker is not answering well.
        raise BusUnavailable(f"topic {name} did not appear in the metadata of "
                             f"{self.bootstrap_servers} within {timeout_s}s")

    def partitions(self, topic: str) -> int:
        with kafka_errors(f"metadata of {topic}", self.bootstrap_servers):
            return len(self._producer.partitions_for(topic) or ())

    def publish(self, topic, value, key=None, headers=()):  # type: ignore[no-untyped-def]
        if not isinstance(value, bytes | bytearray):
            raise BusError(f"publish to {topic}: value must be bytes, got {type(value).__name__}")
        if len(value) > MAX_MESSAGE_BYTES:
            raise BusError(f"publish to {topic}: {len(value)} bytes exceeds {MAX_MESSAGE_BYTES}; "
                           "put large payloads in the store and send a reference")
        self.ensure_topic(topic)
        with kafka_errors(f"publish to {topic}", self.bootstrap_servers):
            future = self._producer.send(topic, value=bytes(value), key=as_key(key), headers=list(headers))
        self._pending().append(future)

    def _pending(self) -> list[Any]:
        pending: list[Any] | None = getattr(self._sent, "futures", None)
        if pending is None:
            pending = self._sent.futures = []
        return pending

    def flush(self, timeout_s: float | None = None) -> None:
        """Block until this thread's messages are acknowledged; raise if any was not.

        kafka-python's flush returns once every send *completed*, failed ones included,
        so the futures are checked: a message the broker never took raises
        BusUnavailable, and the consume loop handles its source message again instead
        of committing it (ADR 0014).

        The wait is bounded (`flush_timeout_s` unless told otherwise): after a broker
        restart kafka-python 3.0 can leave a batch whose future never completes, past its
        own delivery timeout, and an unbounded flush then hangs the worker for good (seen
        in tests/e2e/test_outages.py). A flush that times out drops the producer — its
        stuck batch with it — so the next send builds a fresh one, and raises
        BusUnavailable so the worker waits the outage out and handles the source
        messages again (at-least-once; consumers are idempotent).
        """
        if self._clients is None:
            return  # nothing was ever sent
        limit = self.flush_timeout_s if timeout_s is None else timeout_s
        try:
            with kafka_errors("flush", self.bootstrap_servers):
                self._producer.flush(timeout=limit)
        except BusUnavailable:
            self._sent.futures = []  # their source messages are handled (and sent) again
            self._drop_producer()
            raise
        pending, self._sent.futures = self._pending(), []
        failed = [f.exception for f in pending if f.is_done and f.failed()]
        if failed:
            raise _translate(f"{len(failed)} of {len(pending)} message(s) not delivered",
                             self.bootstrap_servers, failed[0])

    @property
    def flush_timeout_s(self) -> float:
        """A delivery timeout plus one request: longer than any send kafka-python completes."""
        return (self._delivery_timeout_ms() + self.request_timeout_ms) / 1000

    def _delivery_timeout_ms(self) -> int:
        return max(2 * self.request_timeout_ms, 30_000)

    def _drop_producer(self) -> None:
        """Forget the producer (the admin client stays); closed in the background, since
        closing one with a stuck batch can itself wait."""
        with self._lock:
            if self._clients is None:
                return
            producer, admin = self._clients
            self._clients = None
        admin.close()
        threading.Thread(target=producer.close, kwargs={"timeout": 5}, daemon=True,
                         name="kafka-producer-close").start()

    def subscribe(self, topics, group, handler, *, retry=None, dead_letters=True, options=None):  # type: ignore[no-untyped-def]
        for t in topics:
            self.ensure_topic(t)
        return KafkaWorker(self, topics, group, handler, retry, dead_letters, options or ConsumerOptions())

    def close(self) -> None:
        if self._clients is None:
            return
        producer, admin = self._clients
        try:
            producer.flush(timeout=10)
        except KafkaError as exc:  # closing during an outage: what is unsent is redelivered
            log.warning("flush at close failed: %s", exc)
        finally:
            producer.close(timeout=5)
            admin.close()


class KafkaWorker(Worker):
    bus: KafkaBus

    def __init__(self, bus: KafkaBus, topics: Sequence[str], group: str, handler: Handler,
                 retry: RetryPolicy | None, dead_letters: bool, options: ConsumerOptions) -> None:
        super().__init__(bus, topics, group, handler, retry, dead_letters)
        self._where = bus.bootstrap_servers
        try:
            self.consumer = KafkaConsumer(
                *topics, bootstrap_servers=bus.bootstrap_servers, group_id=group,
                client_id=f"{bus.client_id}-{group}", enable_auto_commit=False,
                auto_offset_reset="earliest", max_poll_records=options.max_poll_records,
                session_timeout_ms=bus.session_timeout_ms,
                heartbeat_interval_ms=max(100, bus.session_timeout_ms // 4),
                max_poll_interval_ms=int(options.max_poll_interval_s * 1000),
            )
        except (KafkaError, OSError) as exc:
            raise BusUnavailable(f"no Kafka broker answers at {bus.bootstrap_servers}: {exc}") from None
        # A fresh consumer may join before it has metadata for a just-created topic, get no
        # partitions, and idle until the next metadata refresh (minutes). Ask first.
        with kafka_errors("topic metadata", self._where):
            for topic in topics:
                self.consumer.partitions_for_topic(topic)

    def assignment(self) -> list[tuple[str, int]]:
        return sorted((tp.topic, tp.partition) for tp in self.consumer.assignment())

    def _poll(self, timeout_s: float) -> list[Message]:
        with kafka_errors("poll", self._where):
            records = self.consumer.poll(timeout_ms=int(timeout_s * 1000))
        out: list[Message] = []
        for tp in sorted(records, key=lambda t: (t.topic, t.partition)):
            for r in records[tp]:
                headers = tuple((k, v or b"") for k, v in (r.headers or []))
                out.append(Message(r.topic, r.value, r.key, r.partition, r.offset, headers))
        return out

    def _commit(self, messages: Sequence[Message]) -> None:
        offsets: dict[TopicPartition, OffsetAndMetadata] = {}
        for m in messages:
            tp = TopicPartition(m.topic, m.partition)
            if tp not in offsets or offsets[tp].offset < m.offset + 1:
                offsets[tp] = OffsetAndMetadata(m.offset + 1, "", -1)
        if offsets:
            with kafka_errors("commit", self._where):
                self.consumer.commit(offsets=offsets, timeout_ms=self.bus.request_timeout_ms)

    def _rewind(self, first_unprocessed: dict[tuple[str, int], int]) -> None:
        with kafka_errors("seek", self._where):
            for (topic, partition), offset in first_unprocessed.items():
                tp = TopicPartition(topic, partition)
                if tp in self.consumer.assignment():
                    self.consumer.seek(tp, offset)

    def _pause(self) -> None:
        with kafka_errors("pause", self._where):
            self.consumer.pause(*self.consumer.assignment())

    def _resume(self) -> None:
        with kafka_errors("resume", self._where):
            self.consumer.resume(*self.consumer.paused())

    def _keepalive(self, seconds: float) -> None:
        """Poll the paused consumer so the group keeps this member (max.poll.interval.ms).

        A rebalance meanwhile may hand over new, unpaused partitions whose records this
        poll then returns: they are put back (seek) and paused too.
        """
        deadline = time.monotonic() + seconds
        while not self.stopping and not self._wake.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            try:
                records = self.consumer.poll(timeout_ms=int(min(left, 1.0) * 1000))
                for tp, batch in records.items():
                    if batch:
                        self.consumer.seek(tp, min(r.offset for r in batch))
                        self.consumer.pause(tp)
            except (KafkaError, OSError) as exc:  # the broker is what we are waiting for
                log.debug("poll while paused: %s", exc)
                self._stop.wait(min(left, 1.0))

    def _close(self) -> None:
        try:
            self.consumer.close(autocommit=False)
        except (KafkaError, OSError) as exc:  # leaving the group is best effort
            log.warning("closing consumer of %s: %s", self.group, exc)
