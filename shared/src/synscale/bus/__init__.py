"""Message bus: one interface, Kafka and in-memory implementations with the same semantics."""

from synscale.bus.base import (
    Bus,
    BusError,
    BusUnavailable,
    ConsumerOptions,
    Message,
    RetryPolicy,
    Worker,
)
from synscale.bus.memory import MemoryBus

__all__ = [
    "Bus",
    "BusError",
    "BusUnavailable",
    "ConsumerOptions",
    "MemoryBus",
    "Message",
    "RetryPolicy",
    "Worker",
]
