"""Which images a training run uses: nested, deterministic subsets of cells and real data.

A training set is (source cells, real set, N per class, real images per class, seed).
Per class, a cell contributes the images with the smallest indices (the generator's
image-index order, read from the shard keys), and the real set its first images in
dataset order. So the set of size N is contained in the set of size 2N — the nesting a
scaling study needs so that a bigger N only ever adds data. With several cells, N is
split as evenly as possible (the first N mod k cells get one more), which keeps nesting.

Planning reads only object listings, never image bytes, so every "not enough data" error
is raised before any compute is spent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from synscale import ids, layout
from synscale.cells import Cell
from synscale.datasets import fashion_mnist
from synscale.errors import InvalidInput, PreconditionFailed
from synscale.store.base import ObjectInfo, ObjectStore
from synscale_trainer.classes import ClassSet

REAL_CHUNK = 256  # real images per streaming source (the analogue of a shard)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


@dataclass(frozen=True)
class ShardSource:
    """Images [lo, hi) of one class, read from one shard."""

    key: str
    sha256: str
    size: int
    label: int
    lo: int
    hi: int

    @property
    def count(self) -> int:
        return self.hi - self.lo

    @property
    def uid(self) -> str:
        return f"{self.key}#{self.lo}-{self.hi}"


@dataclass(frozen=True)
class RealSource:
    """A chunk of real images of one class: Fashion-MNIST indices or image file paths."""

    kind: str  # fashion-mnist | folder
    refs: tuple[int | str, ...]
    label: int

    @property
    def count(self) -> int:
        return len(self.refs)

    @property
    def uid(self) -> str:
        return f"real:{self.kind}:{self.label}:{self.refs[0]}"


Source = ShardSource | RealSource


@dataclass
class TrainingPlan:
    classes: ClassSet
    sources: list[Source]
    per_class: dict[str, int] = field(default_factory=dict)  # class id -> planned images

    @property
    def n_images(self) -> int:
        return sum(s.count for s in self.sources)

    @property
    def shard_sources(self) -> list[ShardSource]:
        return [s for s in self.sources if isinstance(s, ShardSource)]

    def members(self) -> set[tuple[str, int | str]]:
        """Identity of every planned image (for nesting checks and audits)."""
        out: set[tuple[str, int | str]] = set()
        for s in self.sources:
            if isinstance(s, ShardSource):
                prefix = s.key.rsplit("/", 1)[0]
                out.update((prefix, i) for i in range(s.lo, s.hi))
            else:
                out.update((s.kind, r) for r in s.refs)
        return out


def split_evenly(n: int, k: int) -> list[int]:
    """n items over k parts, the first n mod k parts one larger (monotone in n: keeps nesting)."""
    return [n // k + (1 if i < n % k else 0) for i in range(k)]


def plan_training_set(
    store: ObjectStore | None,
    *,
    study_id: str,
    cells: Sequence[Cell],
    classes: ClassSet,
    n_per_class: int,
    real_per_class: int,
    real_path: str = "",
    class_n: Mapping[str, int] | None = None,
) -> TrainingPlan:
    """The training set of a job: images 0..n-1 of each class of each cell, plus real images.

    `class_n` (a per-class allocation, TrainingJob.class_n_per_class) gives each class its own
    synthetic count instead of `n_per_class`; each class's count is split over the cells.
    """
    if n_per_class < 0:
        raise InvalidInput("n_per_class", f"must be >= 0, got {n_per_class}")
    if real_per_class < 0:
        raise InvalidInput("real_per_class", f"must be >= 0, got {real_per_class}")
    if cells and n_per_class == 0:
        raise InvalidInput("n_per_class", "cells are given but n_per_class is 0")
    if not cells and n_per_class > 0:
        raise InvalidInput("cells", f"n_per_class is {n_per_class} but no cells are given")
    if n_per_class == 0 and real_per_class == 0:
        raise InvalidInput("n_per_class", "the training set is empty (no synthetic and no real images)")
    counts = _class_counts(classes, n_per_class, class_n)
    sources: list[Source] = []
    per_class = dict.fromkeys(classes.ids, 0)
    if cells:
        if store is None:
            raise PreconditionFailed("synthetic cells need an object store")
        splits = {cid: split_evenly(n, len(cells)) for cid, n in counts.items()}
        for i, cell in enumerate(cells):
            shares = {cid: parts[i] for cid, parts in splits.items()}
            what = "class_n_per_class" if class_n else f"{n_per_class}"
            for src in _plan_cell(
                store, study_id, cell, classes, shares, f"{what} over {len(cells)} cell(s)"
            ):
                sources.append(src)
                per_class[classes.ids[src.label]] += src.count
    if real_per_class:
        for rsrc in _plan_real(classes, real_per_class, real_path):
            sources.append(rsrc)
            per_class[classes.ids[rsrc.label]] += rsrc.count
    return TrainingPlan(classes, sources, per_class)


def _class_counts(classes: ClassSet, n_per_class: int, class_n: Mapping[str, int] | None) -> dict[str, int]:
    """Synthetic images per class: n_per_class for every class, or the job's allocation."""
    if not class_n:
        return dict.fromkeys(classes.ids, n_per_class)
    unknown = sorted(set(class_n) - set(classes.ids))
    missing = [cid for cid in classes.ids if cid not in class_n]
    if unknown or missing:
        raise InvalidInput("class_n_per_class", f"must name every class of the run exactly; unknown: "
                                                f"{unknown[:5]}, missing: {missing[:5]}")
    bad = {k: v for k, v in class_n.items() if v < 1}
    if bad:
        raise InvalidInput("class_n_per_class", f"every class needs >= 1 image, got {bad}")
    return {cid: int(class_n[cid]) for cid in classes.ids}


def _plan_cell(
    store: ObjectStore,
    study_id: str,
    cell: Cell,
    classes: ClassSet,
    shares: Mapping[str, int],
    split_note: str,
) -> list[ShardSource]:
    prefix = layout.cell_prefix(study_id, cell.generator, cell.cfg, cell.strategy)
    folders = store.children(prefix)  # class folders: one delimiter listing, not every shard
    if not folders:
        raise InvalidInput("cells", f"cell {cell.name} has no shards under {prefix} (empty cell)")
    unknown = sorted(set(folders) - set(classes.folder_to_index))
    if unknown:
        raise InvalidInput(
            "cells", f"cell {cell.name} has class folders not in class set {classes.name}: {unknown[:5]}"
        )
    wanted = [(label, class_id) for label, class_id in enumerate(classes.ids) if shares[class_id] > 0]
    if not wanted:
        return []
    # One listing per class, a few at a time: on S3 each is a round trip, and a run of small N
    # over 1000 classes would otherwise wait for 1000 of them in a row.
    with ThreadPoolExecutor(max_workers=min(16, len(wanted))) as pool:
        taken_per_class = list(pool.map(
            lambda lc: _take_prefix(store, prefix, ids.safe_component(lc[1]), lc[0], shares[lc[1]]),
            wanted))
    out: list[ShardSource] = []
    for (_, class_id), (chosen, taken) in zip(wanted, taken_per_class, strict=True):
        share = shares[class_id]
        if taken < share:
            raise InvalidInput(
                "n_per_class",
                f"cell {cell.name} has {taken} images of class {class_id!r}; {share} are needed "
                f"(n_per_class {split_note})",
            )
        out.extend(chosen)
    return _with_sha(store, out)


def _take_prefix(store: ObjectStore, prefix: str, folder: str, label: int,
                 share: int) -> tuple[list[ShardSource], int]:
    """Shards of one class covering images 0..share-1, read from the class's listing in
    key order (= start order, zero-padded) and stopped as soon as they cover `share`: a
    run of N per class lists about N/shard-size keys, not the cell (docs/scaling.md)."""
    covered = 0  # images [0, covered) of the index order are accounted for
    taken = 0
    chosen: list[ShardSource] = []
    pending: list[tuple[int, int, ObjectInfo]] = []  # shards of the start being read (longest first)

    def consume(start: int, count: int, info: ObjectInfo) -> bool:
        nonlocal covered, taken
        if taken >= share or start > covered:
            return False  # a gap: images after it are not 0..N-1 (layout.covers, no gaps accepted)
        lo = max(start, covered)
        hi = min(start + count, lo + (share - taken))
        if hi > lo:
            chosen.append(ShardSource(info.key, info.sha256, info.size, label, lo, hi))
            taken += hi - lo
            covered = hi
        return True

    def drain() -> bool:
        ok = all(consume(*t) for t in sorted(pending, key=lambda t: -t[1]))
        pending.clear()
        return ok

    for info in store.list(f"{prefix}{folder}/"):
        parsed = layout.parse_shard_in_cell(prefix, info.key)
        if parsed is None:
            continue
        _, start, count = parsed
        if pending and pending[0][0] != start and not drain():
            break
        if taken >= share:
            break
        pending.append((start, count, info))
    else:
        drain()
    return chosen, taken


def _with_sha(store: ObjectStore, sources: list[ShardSource]) -> list[ShardSource]:
    """Fill in sha256 where the listing lacks it (S3 listings carry no user metadata).

    One stat per chosen shard, issued in parallel: on S3 each is a round trip, and a run
    of N = max chooses every shard of its cell.
    """
    missing = [s.key for s in sources if not s.sha256]
    if not missing:
        return sources
    with ThreadPoolExecutor(max_workers=min(16, len(missing))) as pool:
        infos = dict(zip(missing, pool.map(store.stat, missing), strict=True))
    out = []
    for s in sources:
        if not s.sha256:
            info = infos[s.key]
            if info is None:
                raise PreconditionFailed(f"shard {s.key} vanished while planning")
            s = ShardSource(
                s.key, info.sha256 or ids.digest(s.key, info.size, length=64), info.size, s.label, s.lo, s.hi
            )
        out.append(s)
    return out


def _plan_real(classes: ClassSet, k: int, real_path: str) -> list[RealSource]:
    out: list[RealSource] = []
    if classes.name == "fashion-mnist" and not real_path:
        split = fashion_mnist.load("train")
        by_class = split.per_class_indices()
        for label, class_id in enumerate(classes.ids):
            idx = by_class[classes.full_ids.index(class_id)]
            if k > len(idx):
                raise InvalidInput(
                    "real_per_class",
                    f"Fashion-MNIST train has {len(idx)} images of {classes.ids[label]!r}; {k} requested",
                )
            out += _chunks("fashion-mnist", [int(i) for i in np.asarray(idx[:k])], label)
        return out
    if not real_path:
        raise InvalidInput("real_path", f"real images of class set {classes.name} need an ImageFolder root")
    files = image_folder(Path(real_path), classes, field="real_path")
    for label, class_id in enumerate(classes.ids):
        paths = files.get(class_id, [])
        if k > len(paths):
            raise InvalidInput(
                "real_per_class", f"{real_path} has {len(paths)} images of {class_id!r}; {k} requested"
            )
        out += _chunks("folder", [str(p) for p in paths[:k]], label)
    return out


def _chunks(kind: str, refs: list, label: int) -> list[RealSource]:  # type: ignore[type-arg]
    return [RealSource(kind, tuple(refs[i : i + REAL_CHUNK]), label) for i in range(0, len(refs), REAL_CHUNK)]


def image_folder(
    root: Path,
    classes: ClassSet,
    *,
    field: str,
    known: frozenset[str] | None = None,
) -> dict[str, list[Path]]:
    """class id -> image files (sorted by name) of an ImageFolder-layout directory.

    Folder names must be ids of `known` (default: the whole class set, e.g. the 1000
    ImageNet wnids; ImageNet-A/R pass their 200). ImageNet-V2's numeric folders
    ('0'..'999') are read as indices of the whole set. Folders of known classes outside
    the run's (restricted) classes are skipped; any other folder is an error naming it,
    raised before any compute.
    """
    if not root.is_dir():
        raise PreconditionFailed(f"{field}: {root} is not a directory")
    folders = sorted(p for p in root.iterdir() if p.is_dir())
    if not folders:
        raise InvalidInput(field, f"{root} has no class folders")
    known = known if known is not None else frozenset(classes.full_ids)
    wanted = known & frozenset(classes.ids)
    out: dict[str, list[Path]] = {}
    unknown: list[str] = []
    for folder in folders:
        class_id = folder.name
        if class_id.isdigit() and class_id not in known and int(class_id) < len(classes.full_ids):
            class_id = classes.full_ids[int(class_id)]
        if class_id not in known:
            unknown.append(folder.name)
            continue
        if class_id not in wanted:
            continue
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if files:
            out[class_id] = files
    if unknown:
        raise InvalidInput(field, f"{root} has {len(unknown)} unknown class folder(s): {unknown[:8]}")
    if not out:
        raise InvalidInput(field, f"{root} has no images of the run's classes")
    return out
