"""The object-store layout of a study: every key, written and parsed in one place.

```
studies/<study>/study.yaml                                       the study (analyzer)
studies/<study>/images/<gen>/cfg<g>/<strategy>/<class>/<start:09d>-<count:06d>.tar
studies/<study>/scores/<gen>/cfg<g>/<strategy>/scores.json       (+ table.csv)
studies/<study>/scores/<gen>/cfg<g>/<strategy>/partials/<class>-<start:09d>-<count:06d>.npz
studies/<study>/runs/<run id>/result.json                        (+ checkpoint.pt)
studies/<study>/report/<name>                                    report.html|md|json, plots
studies/<study>/state/launched/<run id>.json, state/cancelled.json
```

Each key has a `*_key` formatter and, where a reader has to recognise keys it lists, a
`parse_*` that returns None for anything that is not such a key (a stray object in a
listing is skipped, never misread). One coverage rule lives here as well: a (cell, class)
holds N images only when its shards cover indices 0..N-1 with no gap — the nested-subset
guarantee (a run of size N trains on images 0..N-1, so the N-run's data is a subset of the
2N-run's). See docs/architecture.md, "Store layout".
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass

from synscale.ids import cell_path, safe_component, validate_key

SPEC = "study.yaml"
SCORES = "scores.json"
TABLE = "table.csv"
RESULT = "result.json"
CHECKPOINT = "checkpoint.pt"
_SHARD_NAME = re.compile(r"^(?P<start>\d{9})-(?P<count>\d{6})\.tar$")
_PARTIAL_NAME = re.compile(r"^(?P<cls>[A-Za-z0-9._=-]+)-(?P<start>\d{9})-(?P<count>\d{6})$")


# ---------------------------------------------------------------------- prefixes
def study_prefix(study_id: str) -> str:
    return f"studies/{safe_component(study_id)}"


def images_prefix(study_id: str) -> str:
    return f"{study_prefix(study_id)}/images/"


def cell_prefix(study_id: str, generator: str, cfg: float, strategy: str) -> str:
    """Prefix under which every shard of one cell lives (one sub-folder per class)."""
    return f"{images_prefix(study_id)}{cell_path(generator, cfg, strategy)}/"


def runs_prefix(study_id: str) -> str:
    return f"{study_prefix(study_id)}/runs/"


def launched_prefix(study_id: str) -> str:
    return f"{study_prefix(study_id)}/state/launched/"


# -------------------------------------------------------------------------- keys
def spec_key(study_id: str) -> str:
    return validate_key(f"{study_prefix(study_id)}/{SPEC}")


def shard_name(seed_start: int, seed_count: int) -> str:
    return f"{int(seed_start):09d}-{int(seed_count):06d}.tar"


def shard_key(study_id: str, generator: str, cfg: float, strategy: str, class_id: str,
              seed_start: int, seed_count: int) -> str:
    """Object key of the shard holding images [seed_start, seed_start + seed_count)."""
    return validate_key(f"{cell_prefix(study_id, generator, cfg, strategy)}{safe_component(class_id)}/"
                        f"{shard_name(seed_start, seed_count)}")


def score_key(study_id: str, generator: str, cfg: float, strategy: str, name: str) -> str:
    """Score artifacts of a cell: scores.json, table.csv, partials/<shard>.npz."""
    return validate_key(f"{study_prefix(study_id)}/scores/{cell_path(generator, cfg, strategy)}/{name}")


def partial_name(class_id: str, seed_start: int, seed_count: int) -> str:
    """The name of a shard's scoring partial (without .npz): `<class>-<start>-<count>`."""
    return f"{safe_component(class_id)}-{int(seed_start):09d}-{int(seed_count):06d}"


def run_key(study_id: str, run_id: str, name: str) -> str:
    """Artifacts of one training run: result.json, checkpoint.pt."""
    return validate_key(f"{runs_prefix(study_id)}{safe_component(run_id)}/{name}")


def report_key(study_id: str, name: str) -> str:
    return validate_key(f"{study_prefix(study_id)}/report/{name}")


def launched_key(study_id: str, run_id: str) -> str:
    return validate_key(f"{launched_prefix(study_id)}{safe_component(run_id)}.json")


def cancelled_key(study_id: str) -> str:
    return validate_key(f"{study_prefix(study_id)}/state/cancelled.json")


def reissued_key(study_id: str) -> str:
    """The reconciler's record of what it re-issued for a study, and why (ADR 0016)."""
    return f"{study_prefix(study_id)}/state/reissued.json"


# ------------------------------------------------------------------------ parsers
@dataclass(frozen=True)
class ShardKey:
    """A parsed shard key: the cell's path (`gen/cfgG/strategy`), the class folder, the range."""

    study: str  # the study's key component
    cell_path: str
    class_folder: str  # safe_component(class_id)
    start: int
    count: int


def parse_shard_key(key: str) -> ShardKey | None:
    """The parts of `studies/<s>/images/<gen>/<cfg>/<strategy>/<class>/<start>-<count>.tar`."""
    parts = key.split("/")
    if len(parts) != 8 or parts[0] != "studies" or parts[2] != "images":
        return None
    m = _SHARD_NAME.match(parts[7])
    if m is None or not parts[4].startswith("cfg"):
        return None
    return ShardKey(parts[1], "/".join(parts[3:6]), parts[6], int(m["start"]), int(m["count"]))


def parse_shard_in_cell(prefix: str, key: str) -> tuple[str, int, int] | None:
    """(class folder, start, count) of a key listed under a `cell_prefix`."""
    if not key.startswith(prefix):
        return None
    folder, sep, name = key[len(prefix):].partition("/")
    m = _SHARD_NAME.match(name) if sep and "/" not in name else None
    return (folder, int(m["start"]), int(m["count"])) if m and folder else None


def parse_partial_name(name: str) -> tuple[str, int, int] | None:
    """(class folder, seed_start, seed_count) of `<class>-<start>-<count>`."""
    m = _PARTIAL_NAME.match(name)
    return (m["cls"], int(m["start"]), int(m["count"])) if m else None


def parse_run_key(study_id: str, key: str) -> tuple[str, str] | None:
    """(run id component, artifact name) of a key under `runs_prefix(study_id)`."""
    prefix = runs_prefix(study_id)
    if not key.startswith(prefix):
        return None
    run, sep, name = key[len(prefix):].partition("/")
    return (run, name) if sep and run and name and "/" not in name else None


def parse_launched_key(study_id: str, key: str) -> str | None:
    """The run id component of a launched marker."""
    prefix = launched_prefix(study_id)
    if not key.startswith(prefix) or not key.endswith(".json"):
        return None
    run = key[len(prefix):-len(".json")]
    return run if run and "/" not in run else None


# ------------------------------------------------------------------ coverage rule
def covered_prefix(ranges: Iterable[tuple[int, int]]) -> int:
    """How many images from index 0 on are all present in these (start, count) ranges.

    Overlaps are fine (a re-sharded class); a gap ends the prefix: images after a gap do
    not count, whatever their number.
    """
    reach = 0
    for start, count in sorted(ranges):
        if start > reach:
            break
        reach = max(reach, start + count)
    return reach


def covers(ranges: Iterable[tuple[int, int]], n: int) -> bool:
    """Whether images 0..n-1 are all present (the one rule every stage applies)."""
    return covered_prefix(ranges) >= n


class Coverage:
    """Image ranges of one (cell, class) seen so far, capped at the study's size.

    Kept merged and sorted as two parallel lists, so `add` is a bisection plus a splice
    of the intervals it touches (one event's worth of work, however many shards came
    before), and `covered` / `prefix` are O(1): the analyzer asks for them on every
    shard-ready event (docs/scaling.md, "Bookkeeping growth").
    """

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self._lo: list[int] = []  # starts of the merged, sorted [lo, hi) intervals
        self._hi: list[int] = []
        self._covered = 0

    @property
    def intervals(self) -> list[tuple[int, int]]:
        """The merged, sorted [lo, hi) intervals."""
        return list(zip(self._lo, self._hi, strict=True))

    def add(self, start: int, count: int) -> None:
        lo, hi = max(0, start), min(self.cap, start + count)
        if hi <= lo:
            return
        # intervals i..j-1 touch [lo, hi): those with hi_i >= lo and lo_i <= hi
        i = bisect_left(self._hi, lo)
        j = bisect_right(self._lo, hi)
        if i < j:
            lo, hi = min(lo, self._lo[i]), max(hi, self._hi[j - 1])
            self._covered -= sum(b - a for a, b in zip(self._lo[i:j], self._hi[i:j], strict=True))
        self._lo[i:j] = [lo]
        self._hi[i:j] = [hi]
        self._covered += hi - lo

    @property
    def covered(self) -> int:
        return self._covered

    @property
    def prefix(self) -> int:
        """How many images from index 0 on are all present (what a run of size N needs)."""
        return self._hi[0] if self._lo and self._lo[0] == 0 else 0
