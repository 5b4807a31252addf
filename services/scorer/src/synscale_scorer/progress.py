"""Which seed ranges of a cell have partials: kept per event instead of re-listed (ADR 0028).

Completion (service.py) is "every class's partials cover 0..N-1". Re-listing the cell's
partials on every shard-ready event made one cell of m shards cost O(m²) listings; here
one listing seeds a `CellProgress` and each event adds its own shard's range, so an event
costs one interval insert (`layout.Coverage`) and a set update, and the full listing is
read again only once the cell looks complete — to aggregate exactly what the store holds.

Several scorer processes share a cell's partials (shard events are spread over
partitions by shard key): a process's view can miss partials another wrote after its
seed, so an incomplete view older than `relist_s` — and than ten times what its listing
took, which bounds the time spent re-listing to a tenth — is re-seeded by one listing. The
reconciler's re-announcement of a fully generated but unscored cell (ADR 0016) brings the
events that trigger it, so no cell stays unscored; one process (the embedded runtime, a
single replica) is exact without it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from synscale import ids, layout
from synscale.cells import Cell

DEFAULT_RELIST_S = 30.0


@dataclass
class CellProgress:
    """Per class of one cell: the seed ranges whose partials exist, and who is still short."""

    expected: dict[str, int]  # class id -> images needed (0..N-1)
    seeded_at: float = 0.0
    listing_s: float = 0.0  # what the seeding listing took
    by_safe: dict[str, str] = field(default_factory=dict)
    coverage: dict[str, layout.Coverage] = field(default_factory=dict)
    missing: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.by_safe = {ids.safe_component(c): c for c in self.expected}
        self.coverage = {c: layout.Coverage(n) for c, n in self.expected.items()}
        self.missing = {c for c, n in self.expected.items() if n > 0}

    def add(self, class_id: str, start: int, count: int) -> None:
        cov = self.coverage.get(class_id)
        if cov is None:
            return  # not a class of the plan
        cov.add(start, count)
        if cov.prefix >= cov.cap:
            self.missing.discard(class_id)

    def add_names(self, names: Iterable[str]) -> None:
        """Partial names as listed (`<class>-<start>-<count>`); others are skipped."""
        for name in names:
            parsed = layout.parse_partial_name(name)
            if parsed is not None and parsed[0] in self.by_safe:
                self.add(self.by_safe[parsed[0]], parsed[1], parsed[2])

    @property
    def complete(self) -> bool:
        return not self.missing


class ProgressBook:
    """The `CellProgress` of every (study, cell) this process scores, thread-safe."""

    def __init__(self, relist_s: float = DEFAULT_RELIST_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.relist_s = relist_s
        self.clock = clock
        self._lock = threading.Lock()
        self._cells: dict[tuple[str, Cell], CellProgress] = {}

    def note(self, study_id: str, cell: Cell, expected: dict[str, int], class_id: str, start: int,
             count: int, listing: Callable[[], Iterable[str]]) -> bool:
        """Record a partial of [start, start+count) of `class_id`; whether the cell now
        looks complete. `listing` (the cell's partial names) seeds a view seen for the
        first time, and re-seeds an incomplete one older than `relist_s`."""
        key = (study_id, cell)
        with self._lock:
            progress = self._cells.get(key)
            if progress is not None and progress.expected != expected:
                progress = None  # the plan changed (other study options): start over
        if progress is None:
            progress = self._seed(key, expected, listing)
        with self._lock:
            progress.add(class_id, start, count)
            age = self.clock() - progress.seeded_at
            if progress.complete or age <= max(self.relist_s, 10 * progress.listing_s):
                return progress.complete
        return self._seed(key, expected, listing).complete

    def forget(self, study_id: str, cell: Cell) -> None:
        with self._lock:
            self._cells.pop((study_id, cell), None)

    def _seed(self, key: tuple[str, Cell], expected: dict[str, int],
              listing: Callable[[], Iterable[str]]) -> CellProgress:
        start = self.clock()
        progress = CellProgress(dict(expected), seeded_at=start)
        progress.add_names(listing())  # outside the lock: other cells go on meanwhile
        progress.listing_s = self.clock() - start
        with self._lock:
            old = self._cells.get(key)
            if old is not None and old.expected == progress.expected:
                for class_id, cov in old.coverage.items():  # keep what events added meanwhile
                    for lo, hi in cov.intervals:
                        progress.add(class_id, lo, hi - lo)
            self._cells[key] = progress
        return progress
