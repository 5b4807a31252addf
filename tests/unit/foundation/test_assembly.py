"""synscale.assembly.Parts: one build per process, the same object for servicer and worker."""

from __future__ import annotations

import pytest

from synscale.assembly import Parts
from synscale.bus.memory import MemoryBus
from synscale.runtime import ServiceContext
from synscale.store.file import FileStore


def test_parts_are_built_once_and_shared(tmp_path) -> None:  # type: ignore[no-untyped-def]
    builds: list[ServiceContext] = []

    def build(ctx: ServiceContext) -> object:
        builds.append(ctx)
        return object()

    parts = Parts(build)
    ctx = ServiceContext(MemoryBus(), FileStore(tmp_path, "b"))
    assert parts(ctx) is parts(ctx) and builds == [ctx]
    with pytest.raises(RuntimeError, match="one ServiceContext per process"):
        parts(ServiceContext(MemoryBus(), FileStore(tmp_path, "b")))
