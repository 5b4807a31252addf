"""The domain core's bookkeeping stays exact while it stops growing with the study (ADR 0027).

Coverage's incremental merge against the coverage rule recomputed from all ranges; the
FileStore's prefix listing against a whole-bucket filter; the MemoryBus's bounded and
committed-drop retention against what a consumer must still receive.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from synscale import layout
from synscale.bus.base import BusError, Message
from synscale.bus.memory import MemoryBus
from synscale.store.file import FileStore
from synscale.study import load_study

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


@pytest.mark.parametrize("seed", range(5))
def test_coverage_matches_the_rule_recomputed_from_every_range(seed: int) -> None:
    rng = random.Random(seed)
    cap = 500
    cov = layout.Coverage(cap)
    ranges: list[tuple[int, int]] = []
    for _ in range(200):
        start, count = rng.randrange(-10, cap + 20), rng.randrange(0, 40)
        cov.add(start, count)
        ranges.append((max(0, start), max(0, min(cap, start + count) - max(0, start))))
        covered = {i for s, c in ranges for i in range(s, s + c)}
        assert cov.covered == len(covered)
        assert cov.prefix == layout.covered_prefix(ranges)
        merged = cov.intervals
        assert merged == sorted(merged)
        assert all(a < b for a, b in merged)
        assert all(merged[i][1] < merged[i + 1][0] for i in range(len(merged) - 1))  # merged: no touching


def test_study_id_is_computed_once_and_equal_specs_stay_equal() -> None:
    a, b = load_study(EXAMPLES / "toy.yaml"), load_study(EXAMPLES / "toy.yaml")
    first = a.study_id
    assert a.study_id is first  # cached, not re-hashed
    assert a == b and "study_id" not in a.model_dump()  # the cache is neither a field nor compared
    assert a.study_id == b.study_id


def test_filestore_keys_walk_only_the_prefix_and_agree_with_a_full_filter(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    keys = ["a/b/c1.tar", "a/b/c2.tar", "a/bc/d.tar", "a/x/e.tar", "ab/f.tar", "top.txt", "a/b/deep/g.tar"]
    for k in keys:
        store.put(k, k.encode())
    for prefix in ("", "a/", "a/b", "a/b/", "a/b/c", "ab", "a/bc/", "zzz/", "a/b/deep/"):
        expect = sorted(k for k in keys if k.startswith(prefix))
        assert list(store.keys(prefix)) == expect, prefix
        assert [i.key for i in store.list(prefix)] == expect, prefix
    # the sidecar tree is never listed, even when asked for by name
    assert list(store.keys(".synscale-meta/")) == []


def _msg_values(bus: MemoryBus, topic: str) -> list[bytes]:
    return [m.value for m in bus.messages(topic)]


def test_memory_bus_bounded_retention_keeps_the_newest_and_consumers_resume_at_the_start() -> None:
    bus = MemoryBus(1, retention=5)
    for i in range(50):
        bus.publish("t", str(i).encode())
    kept = _msg_values(bus, "t")
    assert 5 <= len(kept) <= 10 and kept[-1] == b"49"  # trimmed in chunks, never below the bound
    assert [int(v) for v in kept] == list(range(50 - len(kept), 50))  # offsets stay absolute
    got: list[Message] = []
    worker = bus.subscribe(["t"], "late", got.append)
    worker.run(max_messages=100, idle_timeout_s=0.05)
    worker.close()
    assert [m.value for m in got] == kept and got[0].offset == 50 - len(kept)
    with pytest.raises(BusError, match="retention"):
        MemoryBus(1, retention=0)


def test_memory_bus_drops_what_every_following_group_committed_and_nothing_else() -> None:
    bus = MemoryBus(1, drop_committed=True)
    seen: dict[str, list[bytes]] = {"a": [], "b": []}
    wa = bus.subscribe(["t"], "a", lambda m: seen["a"].append(m.value))
    wb = bus.subscribe(["t"], "b", lambda m: seen["b"].append(m.value))
    for i in range(3000):
        bus.publish("t", str(i).encode())
    wa.run(max_messages=3000, idle_timeout_s=0.05)
    assert len(_msg_values(bus, "t")) == 3000  # group b has committed nothing yet
    wb.run(max_messages=2500, idle_timeout_s=0.05)
    left = _msg_values(bus, "t")
    assert left[-1] == b"2999" and len(left) <= 500 + 1024  # committed by both: dropped (in chunks)
    assert bus.lag("t", "b") == 500 and bus.lag("t", "a") == 0
    wb.run(max_messages=500, idle_timeout_s=0.05)
    wa.close()
    wb.close()
    assert seen["a"] == seen["b"] == [str(i).encode() for i in range(3000)]


@pytest.mark.parametrize("example", ["toy.yaml", "demo-full.yaml"])
def test_planned_run_ids_are_what_run_id_gives_the_job(example: str) -> None:
    """plan_runs builds the classes' identity once per plan: the ids must not change."""
    from synscale.plan import plan_runs, run_id

    runs = plan_runs(load_study(EXAMPLES / example), "bucket")
    assert runs and all(run_id(r.job) == r.run_id for r in runs)
    assert all(len(r.job.classes) == len(runs[0].job.classes) > 0 for r in runs)
