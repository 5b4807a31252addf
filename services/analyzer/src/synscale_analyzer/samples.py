"""Sample grids for the report, read from the shards in the store (claim-check: never the bus).

One grid per generator: rows are classes, columns are (strategy, CFG), each cell shows the
first few images of that class's first shard — the same images whatever run wrote them,
since shard keys and seeds are deterministic.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from synscale import ids, layout
from synscale.errors import is_transient
from synscale.shards import decode_png, iter_shard
from synscale.store.base import ObjectStore
from synscale_analyzer import plots
from synscale_analyzer.report import Figure

log = logging.getLogger(__name__)
MAX_SIDE = 64  # downscale large (e.g. 512²) images so a grid stays a few hundred KB


def first_images(store: ObjectStore, prefix: str, count: int) -> list[np.ndarray]:
    """The first `count` images of the first shard under `prefix` (a class folder of a cell)."""
    keys = sorted(o.key for o in store.list(prefix) if o.key.endswith(".tar"))
    out: list[np.ndarray] = []
    for key in keys:
        try:
            samples = list(iter_shard(store.get(key)))
        except Exception as exc:  # a missing/corrupt shard only loses its thumbnails
            if is_transient(exc):
                raise  # an outage must not change the report: the worker waits it out
            log.warning("sample grid: cannot read %s: %s", key, exc)
            continue
        for s in sorted(samples, key=lambda s: s.key):
            try:
                image = decode_png(s.png)
            except ValueError:
                continue
            if max(image.size) > MAX_SIDE:
                image = image.resize((MAX_SIDE, MAX_SIDE))
            out.append(np.asarray(image.convert("L") if image.mode not in ("L", "RGB") else image))
            if len(out) >= count:
                return out
    return out


def sample_grids(
    store: ObjectStore, study_id: str, generators: Sequence[str], cfgs: dict[str, Sequence[float]],
    strategies: Sequence[str], classes: Sequence[tuple[str, str]], per_cell: int = 4, max_classes: int = 10,
) -> list[Figure]:
    figs = []
    shown = list(classes)[:max_classes]
    for gen in generators:
        columns: list[str] = []
        images: dict[tuple[str, str], list[np.ndarray]] = {}
        for strategy in strategies:
            for cfg in cfgs.get(gen, ()):
                col = f"{strategy} · CFG {cfg:g}"
                columns.append(col)
                prefix = layout.cell_prefix(study_id, gen, cfg, strategy)
                for class_id, name in shown:
                    imgs = first_images(store, f"{prefix}{ids.safe_component(class_id)}/", per_cell)
                    if imgs:
                        images[(name, col)] = imgs
        if not images:
            continue
        png = plots.sample_grid(f"Samples of generator '{gen}' (rows: classes; columns: strategy · CFG)",
                                columns, [n for _, n in shown], images, per_cell)
        figs.append(Figure(f"fig-samples-{ids.safe_component(gen)}.png", f"Samples — {gen}",
                           f"The first {per_cell} images of each class in each cell (same seeds "
                           "across CFG values, so columns differ by guidance alone).", png))
    return figs
