"""Kafka implementation of the bus (kafka-python; crc32c makes large batches fast)."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

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


class KafkaBus(Bus):
    """A producer shared by the process plus one KafkaConsumer per worker."""

    def __init__(
        self,
        bootstrap_servers: str,
        *,
        client_id: str = "synscale",
        default_partitions: int = 6,
        session_timeout_ms: int = 10_000,
        request_timeout_ms: int = 15_000,
        replication_factor: int = 1,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.replication_factor = replication_factor
        self.client_id = client_id
        self.default_partitions = default_partitions
        self.session_timeout_ms = session_timeout_ms
        self._known_topics: set[str] = set()
        try:
            self._producer = KafkaProducer(
                bootstrap_servers=bootstrap_servers, client_id=client_id, acks="all",
                linger_ms=5, retries=5, max_request_size=MAX_MESSAGE_BYTES,
                request_timeout_ms=request_timeout_ms, max_block_ms=request_timeout_ms,
                bootstrap_timeout_ms=request_timeout_ms,
            )
            self._admin = KafkaAdminClient(
                bootstrap_servers=bootstrap_servers, client_id=f"{client_id}-admin",
                request_timeout_ms=request_timeout_ms, bootstrap_timeout_ms=request_timeout_ms,
            )
        except KafkaError as exc:
            raise BusUnavailable(f"no Kafka broker answers at {bootstrap_servers}: {exc}") from None

    def ensure_topic(self, name: str, partitions: int | None = None) -> None:
        if name in self._known_topics:
            return
        try:
            self._admin.create_topics(
                [NewTopic(name, num_partitions=partitions or self.default_partitions,
                          replication_factor=self.replication_factor)]
            )
        except TopicAlreadyExistsError:
            pass
        except KafkaError as exc:
            if "TopicAlreadyExists" not in type(exc).__name__ + str(exc):
                raise BusError(f"could not create topic {name}: {exc}") from exc
        self._wait_for_metadata(name)
        self._known_topics.add(name)

    def _wait_for_metadata(self, name: str, timeout_s: float = 15.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._producer.partitions_for(name):
                return
            time.sleep(0.1)
        raise BusError(f"topic {name} did not appear in metadata within {timeout_s}s")

    def partitions(self, topic: str) -> int:
        return len(self._producer.partitions_for(topic) or ())

    def publish(self, topic, value, key=None, headers=()):  # type: ignore[no-untyped-def]
        if not isinstance(value, bytes | bytearray):
            raise BusError(f"publish to {topic}: value must be bytes, got {type(value).__name__}")
        if len(value) > MAX_MESSAGE_BYTES:
            raise BusError(f"publish to {topic}: {len(value)} bytes exceeds {MAX_MESSAGE_BYTES}; "
                           "put large payloads in the store and send a reference")
        self.ensure_topic(topic)
        try:
            self._producer.send(topic, value=bytes(value), key=as_key(key), headers=list(headers))
        except KafkaError as exc:
            raise BusUnavailable(f"publish to {topic} at {self.bootstrap_servers} failed: {exc}") from exc

    def flush(self, timeout_s: float | None = None) -> None:
        try:
            self._producer.flush(timeout=timeout_s)
        except KafkaError as exc:
            raise BusUnavailable(f"flush to {self.bootstrap_servers} failed: {exc}") from exc

    def subscribe(self, topics, group, handler, *, retry=None, dead_letters=True, options=None):  # type: ignore[no-untyped-def]
        for t in topics:
            self.ensure_topic(t)
        return KafkaWorker(self, topics, group, handler, retry, dead_letters, options or ConsumerOptions())

    def close(self) -> None:
        try:
            self._producer.flush(timeout=10)
        finally:
            self._producer.close(timeout=5)
            self._admin.close()


class KafkaWorker(Worker):
    bus: KafkaBus

    def __init__(self, bus: KafkaBus, topics: Sequence[str], group: str, handler: Handler,
                 retry: RetryPolicy | None, dead_letters: bool, options: ConsumerOptions) -> None:
        super().__init__(bus, topics, group, handler, retry, dead_letters)
        try:
            self.consumer = KafkaConsumer(
                *topics, bootstrap_servers=bus.bootstrap_servers, group_id=group,
                client_id=f"{bus.client_id}-{group}", enable_auto_commit=False,
                auto_offset_reset="earliest", max_poll_records=options.max_poll_records,
                session_timeout_ms=bus.session_timeout_ms,
                heartbeat_interval_ms=max(100, bus.session_timeout_ms // 4),
                max_poll_interval_ms=int(options.max_poll_interval_s * 1000),
            )
        except KafkaError as exc:
            raise BusUnavailable(f"no Kafka broker answers at {bus.bootstrap_servers}: {exc}") from None
        # A fresh consumer may join before it has metadata for a just-created topic, get no
        # partitions, and idle until the next metadata refresh (minutes). Ask first.
        for topic in topics:
            self.consumer.partitions_for_topic(topic)

    def assignment(self) -> list[tuple[str, int]]:
        return sorted((tp.topic, tp.partition) for tp in self.consumer.assignment())

    def _poll(self, timeout_s: float) -> list[Message]:
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
            self.consumer.commit(offsets=offsets)

    def _rewind(self, first_unprocessed: dict[tuple[str, int], int]) -> None:
        for (topic, partition), offset in first_unprocessed.items():
            self.consumer.seek(TopicPartition(topic, partition), offset)

    def _close(self) -> None:
        try:
            self.consumer.close(autocommit=False)
        except KafkaError as exc:  # leaving the group is best effort
            log.warning("closing consumer of %s: %s", self.group, exc)
