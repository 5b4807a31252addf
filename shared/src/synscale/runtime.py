"""What a service needs to run its handlers, identical in both runtimes.

A service exposes `subscriptions(ctx) -> list[Subscription]`. The embedded runner
subscribes every service's handlers to one MemoryBus over a FileStore; the distributed
runtime subscribes one service's handlers to Kafka over MinIO. The handler code is the
same object in both — which is the point.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from synscale.bus.base import Bus, ConsumerOptions, Message, RetryPolicy
from synscale.config import RuntimeConfig, Topics
from synscale.store.base import ObjectStore


@dataclass
class ServiceContext:
    bus: Bus
    store: ObjectStore
    topics: Topics = field(default_factory=Topics)
    config: RuntimeConfig = field(default_factory=RuntimeConfig)
    # Work an in-process runtime runs once every queue has drained (the analyzer's
    # reconciler registers one); each hook returns how many messages it published, so the
    # runtime knows whether pumping again can make progress.
    idle_hooks: list[Callable[[], int]] = field(default_factory=list)

    def run_idle_hooks(self) -> int:
        """Run every idle hook; the number of messages they published."""
        return sum(hook() for hook in self.idle_hooks)

    def publish(self, logical_topic: str, value: bytes, key: bytes | str | None = None) -> None:
        self.bus.publish(self.topics.name(logical_topic), value, key=key)


@dataclass(frozen=True)
class Subscription:
    topics: tuple[str, ...]  # logical names from synscale.config.TOPIC_NAMES
    group: str
    handler: Callable[[Message], None]
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    options: ConsumerOptions = field(default_factory=ConsumerOptions)
