"""In-process bus for the embedded runtime and unit tests.

It mirrors Kafka's model rather than a simple queue — partitions, per-group committed
offsets, assignment that moves on membership change — so code tested against it
behaves the same over Kafka. Partitioning uses Kafka's murmur2 so keys land on the same
partition numbers in both runtimes.

Retention is bounded like a Kafka topic's: each partition keeps at most `retention`
messages (None: all, what unit tests inspecting `messages()` use). Offsets stay
absolute; a consumer whose position fell behind the log's start continues at the start
(auto.offset.reset=earliest). With `drop_committed`, messages every group that follows
the topic has committed are dropped as soon as they are, so a long embedded study holds
only what is still in flight (docs/scaling.md).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Sequence

from kafka.partitioner.default import murmur2

from synscale.bus.base import Bus, BusError, ConsumerOptions, Handler, Message, RetryPolicy, Worker, as_key


def partition_for(key: bytes | None, partitions: int, counter: itertools.count) -> int:
    if key is None:
        return next(counter) % partitions
    return (murmur2(key) & 0x7FFFFFFF) % partitions


class PartitionLog:
    """One partition: the retained messages and the absolute offset of the first."""

    def __init__(self) -> None:
        self.start = 0
        self.items: list[Message] = []

    def __len__(self) -> int:
        """The log's end offset (what Kafka calls the high watermark)."""
        return self.start + len(self.items)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.items)

    def append(self, message: Message) -> None:
        self.items.append(message)

    def read(self, pos: int, limit: int) -> list[Message]:
        lo = max(pos, self.start) - self.start
        return self.items[lo : lo + max(0, limit)]

    def trim_to(self, offset: int) -> None:
        """Drop every message below `offset` (amortised: in chunks, not one at a time)."""
        drop = min(offset, len(self)) - self.start
        if drop > 0 and (drop >= 1024 or drop * 2 >= len(self.items)):
            del self.items[:drop]
            self.start += drop


class MemoryBus(Bus):
    def __init__(self, default_partitions: int = 6, retention: int | None = None,
                 drop_committed: bool = False) -> None:
        if retention is not None and retention < 1:
            raise BusError(f"MemoryBus retention must be >= 1 message per partition, got {retention}")
        self.default_partitions = default_partitions
        self.retention = retention
        self.drop_committed = drop_committed
        self._cond = threading.Condition()
        self._logs: dict[str, list[PartitionLog]] = {}
        self._followers: dict[str, set[str]] = {}  # topic -> groups that ever subscribed
        self._committed: dict[tuple[str, str, int], int] = {}
        self._members: dict[str, list[MemoryWorker]] = {}
        self._generation: dict[str, int] = {}
        self._rr = itertools.count()

    # -- topics and publishing -------------------------------------------------------
    def ensure_topic(self, name: str, partitions: int | None = None) -> None:
        with self._cond:
            if name not in self._logs:
                self._logs[name] = [PartitionLog() for _ in range(partitions or self.default_partitions)]

    def publish(self, topic, value, key=None, headers=()):  # type: ignore[no-untyped-def]
        if not isinstance(value, bytes | bytearray):
            raise BusError(f"publish to {topic}: value must be bytes, got {type(value).__name__}")
        k = as_key(key)
        self.ensure_topic(topic)
        with self._cond:
            parts = self._logs[topic]
            p = partition_for(k, len(parts), self._rr)
            parts[p].append(Message(topic, bytes(value), k, p, len(parts[p]), tuple(headers)))
            if self.retention is not None:
                parts[p].trim_to(len(parts[p]) - self.retention)
            self._cond.notify_all()

    def flush(self, timeout_s: float | None = None) -> None:
        return None  # publishing is synchronous

    def messages(self, topic: str) -> list[Message]:
        """Every retained message of `topic` (all ever published unless retention is bounded)."""
        with self._cond:
            return [m for part in self._logs.get(topic, []) for m in part]

    def partitions(self, topic: str) -> int:
        with self._cond:
            return len(self._logs.get(topic, []))

    def lag(self, topic: str, group: str) -> int:
        with self._cond:
            return sum(
                len(part) - self._committed.get((group, topic, p), 0)
                for p, part in enumerate(self._logs.get(topic, []))
            )

    # -- groups ----------------------------------------------------------------------
    def subscribe(self, topics, group, handler, *, retry=None, dead_letters=True, options=None):  # type: ignore[no-untyped-def]
        for t in topics:
            self.ensure_topic(t)
        worker = MemoryWorker(self, topics, group, handler, retry, dead_letters)
        worker.max_records = (options or ConsumerOptions()).max_poll_records
        with self._cond:
            for t in topics:
                self._followers.setdefault(t, set()).add(group)
            self._members.setdefault(group, []).append(worker)
            self._generation[group] = self._generation.get(group, 0) + 1
        return worker

    def _trim_committed(self, topic: str, p: int) -> None:
        """Drop what every group following `topic` has committed (called under the lock)."""
        groups = self._followers.get(topic, set())
        if groups:
            self._logs[topic][p].trim_to(min(self._committed.get((g, topic, p), 0) for g in groups))

    def _leave(self, worker: MemoryWorker) -> None:
        with self._cond:
            members = self._members.get(worker.group, [])
            if worker in members:
                members.remove(worker)
                self._generation[worker.group] = self._generation.get(worker.group, 0) + 1
                self._cond.notify_all()

    def _assignment(self, worker: MemoryWorker) -> list[tuple[str, int]]:
        members = self._members.get(worker.group, [])
        if worker not in members:
            return []
        slots = [(t, p) for t in sorted(set(worker.topics)) for p in range(len(self._logs[t]))]
        index = members.index(worker)
        return [tp for i, tp in enumerate(slots) if i % len(members) == index]


class MemoryWorker(Worker):
    bus: MemoryBus

    def __init__(self, bus: MemoryBus, topics: Sequence[str], group: str, handler: Handler,
                 retry: RetryPolicy | None, dead_letters: bool) -> None:
        super().__init__(bus, topics, group, handler, retry, dead_letters)
        self._seen_generation = -1
        self._positions: dict[tuple[str, int], int] = {}
        self.max_records = 100

    def _refresh(self) -> None:
        bus = self.bus
        gen = bus._generation.get(self.group, 0)
        if gen == self._seen_generation:
            return
        assigned = bus._assignment(self)
        # Partitions we keep continue from our position; new ones start at the commit.
        self._positions = {
            tp: self._positions.get(tp, bus._committed.get((self.group, *tp), 0)) for tp in assigned
        }
        self._seen_generation = gen

    def assignment(self) -> list[tuple[str, int]]:
        with self.bus._cond:
            self._refresh()
            return sorted(self._positions)

    def _poll(self, timeout_s: float) -> list[Message]:
        bus = self.bus
        with bus._cond:
            for _ in range(2):
                self._refresh()
                out: list[Message] = []
                for (topic, p), pos in sorted(self._positions.items()):
                    log = bus._logs[topic][p]
                    pos = max(pos, log.start)  # retention passed us by: continue at the start
                    take = log.read(pos, self.max_records - len(out))
                    out.extend(take)
                    self._positions[(topic, p)] = pos + len(take)
                    if len(out) >= self.max_records:
                        break
                if out or self.stopping:
                    return out
                bus._cond.wait(timeout_s)
            return []

    def _commit(self, messages: Sequence[Message]) -> None:
        with self.bus._cond:
            for m in messages:
                k = (self.group, m.topic, m.partition)
                self.bus._committed[k] = max(self.bus._committed.get(k, 0), m.offset + 1)
            if self.bus.drop_committed:
                for topic, p in {(m.topic, m.partition) for m in messages}:
                    self.bus._trim_committed(topic, p)

    def _rewind(self, first_unprocessed: dict[tuple[str, int], int]) -> None:
        with self.bus._cond:
            for tp, offset in first_unprocessed.items():
                if tp in self._positions:
                    self._positions[tp] = offset

    def _close(self) -> None:
        self.bus._leave(self)

    def crash(self) -> None:
        """Vanish without committing, as a killed process would (tests, chaos drills)."""
        self._stop.set()
        self.bus._leave(self)
