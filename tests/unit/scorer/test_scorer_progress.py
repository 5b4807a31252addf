"""The scorer's per-event completion view (ADR 0028): exact in one process, and a view
made stale by another process's partials is re-seeded by one listing once it is old."""

from __future__ import annotations

from synscale.cells import Cell
from synscale.layout import partial_name
from synscale_scorer.progress import CellProgress, ProgressBook

CELL = Cell("gen", 2.0, "classname")
EXPECTED = {"a": 128, "b": 64}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_cell_progress_applies_the_coverage_rule_per_class() -> None:
    p = CellProgress(dict(EXPECTED))
    p.add_names([partial_name("a", 0, 64), partial_name("b", 0, 64), "junk", partial_name("zz", 0, 999)])
    assert not p.complete and p.missing == {"a"}
    p.add("a", 100, 28)  # a gap at 64..99: still missing
    assert not p.complete
    p.add("a", 64, 36)
    assert p.complete


def test_one_listing_seeds_the_view_and_events_alone_complete_it() -> None:
    listings: list[int] = []
    stored = [partial_name("a", 0, 64)]

    def listing() -> list[str]:
        listings.append(1)
        return list(stored)

    book = ProgressBook(relist_s=30, clock=Clock())
    assert not book.note("s", CELL, EXPECTED, "b", 0, 64, listing)
    assert book.note("s", CELL, EXPECTED, "a", 64, 64, listing)
    assert len(listings) == 1  # seeded once; the second event listed nothing


def test_a_stale_incomplete_view_is_reseeded_after_relist_s() -> None:
    clock = Clock()
    stored: list[str] = []
    book = ProgressBook(relist_s=30, clock=clock)
    assert not book.note("s", CELL, EXPECTED, "a", 0, 64, lambda: list(stored))
    stored += [partial_name("a", 0, 64), partial_name("a", 64, 64)]  # another replica wrote a's rest
    clock.now = 10.0
    assert not book.note("s", CELL, EXPECTED, "b", 0, 32, lambda: list(stored))  # fresh view: not re-listed
    stored += [partial_name("b", 0, 32), partial_name("b", 32, 32)]
    clock.now = 40.0
    assert book.note("s", CELL, EXPECTED, "b", 0, 32, lambda: list(stored))  # stale: one listing completes it
    book.forget("s", CELL)
    slow = ProgressBook(relist_s=30, clock=clock)

    def slow_listing() -> list[str]:
        clock.now += 20.0  # a listing that takes 20 s: re-seed no more than every 200 s
        return []

    assert not slow.note("s", CELL, EXPECTED, "a", 0, 64, slow_listing)
    seeded = clock.now
    clock.now = seeded + 100.0
    assert not slow.note("s", CELL, EXPECTED, "b", 0, 64, lambda: list(stored))  # 100 s < 10 × 20 s
    clock.now = seeded + 250.0
    assert slow.note("s", CELL, EXPECTED, "b", 0, 64, lambda: list(stored))  # now it re-lists

    assert book.note("s", CELL, EXPECTED, "b", 0, 32, lambda: list(stored))  # forgotten: seeded anew
