"""One process, all services: subscribe each service's handlers to a MemoryBus and pump.

The pump is single-threaded and round-robin: each round gives every consumer a few
messages, so the pipeline interleaves (a cell's training starts while other cells are
still generating) and a run is reproducible: the same inputs give the same order.
Quiescence — a whole round in which no consumer had anything to do — is the end.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from synscale.bus.base import DLQ_SUFFIX, Worker
from synscale.bus.memory import MemoryBus
from synscale.config import TOPIC_NAMES, RuntimeConfig, Topics
from synscale.runtime import ServiceContext, Subscription
from synscale.store.file import FileStore

log = logging.getLogger(__name__)

SERVICES = ("prompter", "generator", "scorer", "trainer", "analyzer")
Provider = Callable[[ServiceContext], list[Subscription]]


def installed_providers(services: Sequence[str] = SERVICES) -> dict[str, Provider]:
    """`synscale_<svc>.worker.subscriptions` of every installed service, in pipeline order."""
    out: dict[str, Provider] = {}
    for svc in services:
        module_name = f"synscale_{svc}.worker"
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
                log.warning("service %s is not installed (no %s); its stage will not run", svc, module_name)
                continue
            raise
        out[svc] = module.subscriptions
    return out


@dataclass
class PumpResult:
    handled: int = 0
    rounds: int = 0
    seconds: float = 0.0
    stopped_by: str = "quiescent"  # quiescent | until | max_messages
    per_consumer: dict[str, int] = field(default_factory=dict)


@dataclass
class _Consumer:
    name: str  # "<service>:<group>"
    worker: Worker


class EmbeddedRunner:
    """MemoryBus + FileStore(data_dir/store) + every provider's subscriptions."""

    def __init__(
        self, data_dir: Path | str, providers: Mapping[str, Provider] | None = None, *,
        bucket: str = "synscale", topics: Topics | None = None, partitions: int = 3,
        listeners: Sequence[Subscription] = (),
    ) -> None:
        self.data_dir = Path(data_dir)
        self.topics = topics or Topics(default_partitions=partitions)
        self.bus = MemoryBus(self.topics.default_partitions)
        self.store = FileStore(self.data_dir / "store", bucket)
        config = RuntimeConfig(runtime="embedded", data_dir=self.data_dir, bucket=bucket, topics=self.topics)
        self.ctx = ServiceContext(self.bus, self.store, self.topics, config)
        self.topics.ensure_all(self.bus)
        self.providers = dict(installed_providers() if providers is None else providers)
        self.consumers: list[_Consumer] = []
        for svc, provider in self.providers.items():
            for sub in provider(self.ctx):
                self._subscribe(svc, sub)
        for sub in listeners:
            self._subscribe("listener", sub)

    def _subscribe(self, owner: str, sub: Subscription) -> None:
        physical = [self.topics.name(t) for t in sub.topics]
        worker = self.bus.subscribe(physical, sub.group, sub.handler, retry=sub.retry, options=sub.options)
        self.consumers.append(_Consumer(f"{owner}:{sub.group}", worker))

    def pump(
        self, *, until: Callable[[], bool] | None = None, max_messages: int | None = None,
        per_turn: int = 1, on_round: Callable[[], None] | None = None,
    ) -> PumpResult:
        """Deliver messages until quiescent, `until()` holds, or `max_messages` were handled.

        `max_messages` stops part-way, as a killed process would (nothing half-handled is
        committed); a fresh runner on the same directory then resumes the work.
        """
        result = PumpResult(per_consumer={c.name: 0 for c in self.consumers})
        start = time.monotonic()
        while True:
            if until is not None and until():
                result.stopped_by = "until"
                break
            moved = 0
            for c in self.consumers:
                if c.name.startswith("listener:"):
                    # Observers (progress bars) see every event as it happens; they do no work
                    # and do not count towards max_messages or quiescence.
                    c.worker.run(idle_timeout_s=0.0, poll_timeout_s=0.0)
                    continue
                budget = per_turn
                if max_messages is not None:
                    budget = min(budget, max_messages - result.handled)
                    if budget <= 0:
                        break
                n = c.worker.run(max_messages=budget, idle_timeout_s=0.0, poll_timeout_s=0.0)
                result.per_consumer[c.name] += n
                result.handled += n
                moved += n
            result.rounds += 1
            if on_round is not None:
                on_round()
            if max_messages is not None and result.handled >= max_messages:
                result.stopped_by = "max_messages"
                break
            if moved == 0:
                break
        result.seconds = time.monotonic() - start
        return result

    def drain(self, owner: str) -> int:
        """Deliver everything pending to the consumers of one owner (e.g. "listener")."""
        total = 0
        for c in self.consumers:
            if c.name.startswith(f"{owner}:"):
                total += c.worker.run(idle_timeout_s=0.0, poll_timeout_s=0.0)
        return total

    def messages(self, logical_topic: str) -> list[bytes]:
        return [m.value for m in self.bus.messages(self.topics.name(logical_topic))]

    def dead_letters(self) -> list[tuple[str, str]]:
        """(topic, error) of every message a handler gave up on."""
        from synscale.v1 import common_pb2

        out = []
        for logical in TOPIC_NAMES:
            for m in self.bus.messages(self.topics.name(logical) + DLQ_SUFFIX):
                letter = common_pb2.DeadLetter.FromString(m.value)
                out.append((letter.topic, letter.error))
        return out

    def close(self) -> None:
        for c in self.consumers:
            c.worker.close()
        self.bus.close()

    def __enter__(self) -> EmbeddedRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
