"""A service process's domain objects: built once, handed to its servicer and its worker.

A service's gRPC servicer and its Kafka worker must share what is expensive or stateful —
the generator's loaded pipelines, the scorer's networks, the trainer's run manager, the
analyzer's study state. Each `__main__` says how to build them from the process's
`ServiceContext`; `serve` builds them once, when the runner creates the context, and passes
the same object to `bindings(ctx, parts)` and `subscriptions(ctx, parts)` — no module-level
registries keyed by `id(ctx)` (docs/architecture.md §2, "Services are thin").
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from synscale.runtime import ServiceContext

T = TypeVar("T")


class Parts(Generic[T]):
    """`build(ctx)` run once per process; a second, different context is a wiring error."""

    def __init__(self, build: Callable[[ServiceContext], T]) -> None:
        self._build = build
        self._lock = threading.Lock()
        self._built: tuple[ServiceContext, T] | None = None

    def __call__(self, ctx: ServiceContext) -> T:
        with self._lock:
            if self._built is None:
                self._built = (ctx, self._build(ctx))
            elif self._built[0] is not ctx:
                raise RuntimeError("a service's parts are built for one ServiceContext per process")
            return self._built[1]

    def serve(self, name: str, bindings: Callable[[ServiceContext, T], list[Any]],
              subscriptions: Callable[[ServiceContext, T], list[Any]]) -> int:
        """`synscale.service.run_service` with both adapters over the same parts."""
        from synscale.service import run_service

        return run_service(name, lambda ctx: bindings(ctx, self(ctx)),
                           lambda ctx: subscriptions(ctx, self(ctx)))
