"""What scoring one cell means: its classes, how many images each should have, the samples.

A `CellPlan` is derived from the study spec (worker, gRPC with a stored study) or from the
shards themselves (CLI on local files). Everything sampled is a pure function of the plan,
so any scorer instance computing a shard's partial picks the same images:

- per-class FID uses the images with index < fid_samples_per_class (images are i.i.d.
  draws from per-index seeds, so the first K are an unbiased sample at a fixed count);
- LPIPS uses `lpips_pairs` distinct pairs drawn from 0..N-1 by an RNG seeded with
  (study, generator, strategy, class) — CFG is left out so every CFG of a strategy is
  measured on the same pairs of seeds (paired comparison, like the image seeds).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from functools import cached_property
from typing import Any

import numpy as np

from synscale import ids, layout, plan
from synscale.cells import Cell
from synscale.errors import InvalidInput
from synscale.settings import Env
from synscale.study import ScoringSpec, StudySpec


@dataclass(frozen=True)
class ScoringOptions:
    """Which metrics run and their sample sizes (study `scoring:` plus scorer settings)."""

    recognizability: bool = True
    diversity: bool = True
    fid: bool = True
    lpips: bool = True
    lpips_pairs: int = 64
    fid_samples_per_class: int = 100
    cas: bool = False
    cas_per_class: int = 1000
    cas_max_steps: int = 1500  # cap of the CAS classifier's training steps (cas.CasRecipe)
    lpips_net: str = "alex"
    lpips_min_size: int = 64
    kid_max_rows: int = 2000
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    batch_size: int = 64
    rows_threshold: int = 0  # a partial keeps raw feature rows up to this count (0: 2 x dim)
    max_problems: int = 100  # problems listed in scores.json (all are counted)

    def __post_init__(self) -> None:
        for f in ("lpips_pairs", "kid_max_rows", "kid_subsets", "rows_threshold", "max_problems"):
            if getattr(self, f) < 0:
                raise InvalidInput(f"scoring.{f}", f"must be >= 0, got {getattr(self, f)}")
        for f in ("fid_samples_per_class", "batch_size", "kid_subset_size", "lpips_min_size", "cas_per_class",
                  "cas_max_steps"):
            if getattr(self, f) < 1:
                raise InvalidInput(f"scoring.{f}", f"must be >= 1, got {getattr(self, f)}")
        if self.lpips_net not in ("alex", "vgg"):
            raise InvalidInput("scoring.lpips_net", f"must be 'alex' or 'vgg', got {self.lpips_net!r}")

    @classmethod
    def from_spec(cls, spec: ScoringSpec | None, env: Mapping[str, str] | None = None) -> ScoringOptions:
        """Study settings, then deployment settings from SYNSCALE_SCORER_<FIELD> variables."""
        base = cls() if spec is None else cls(
            recognizability=spec.recognizability, diversity=spec.diversity, fid=spec.fid,
            lpips=spec.lpips, lpips_pairs=spec.lpips_pairs,
            fid_samples_per_class=spec.fid_samples_per_class, cas=spec.cas, cas_per_class=spec.cas_per_class,
        )
        e = Env(env)  # bad values are SettingsErrors naming the variable
        updates: dict[str, Any] = {}
        for f in fields(cls):
            key = f"SYNSCALE_SCORER_{f.name.upper()}"
            if key not in e:
                continue
            if f.type in ("str", str):
                updates[f.name] = e.text(key)
            elif f.type in ("bool", bool):
                updates[f.name] = e.flag(key, getattr(base, f.name))
            else:
                updates[f.name] = e.integer(key, getattr(base, f.name))
        return replace(base, **updates)

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class CellPlan:
    study_id: str
    cell: Cell
    class_ids: tuple[str, ...]
    per_class: Mapping[str, int]  # expected images per class: indices 0..N-1
    options: ScoringOptions = field(default_factory=ScoringOptions)
    class_names: tuple[str, ...] = ()
    class_set: str = "fashion-mnist"
    image_mode: str | None = None  # None: the first image of each shard sets it
    image_size: tuple[int, int] | None = None
    real_set: str = "fashion-mnist"  # fashion-mnist | imagenet | none
    real_path: str = ""
    generator_backend: str = "embedded"

    def __post_init__(self) -> None:
        if len(set(self.class_ids)) != len(self.class_ids):
            raise InvalidInput("classes", "class ids must be distinct")

    @cached_property
    def labels(self) -> dict[str, int]:
        return {cid: i for i, cid in enumerate(self.class_ids)}

    def label_of(self, class_id: str) -> int:
        if class_id not in self.labels:
            raise ValueError(f"class {class_id!r} is not one of the cell's classes")
        return self.labels[class_id]

    def expected(self, class_id: str) -> int:
        return int(self.per_class.get(class_id, 0))

    def fid_sample_size(self, class_id: str) -> int:
        return min(self.options.fid_samples_per_class, self.expected(class_id))

    def lpips_pairs(self, class_id: str) -> np.ndarray:
        """(P, 2) image indices, i < j, distinct pairs; all pairs when there are few."""
        return _pairs(self.study_id, self.cell.generator, self.cell.strategy, class_id,
                      self.expected(class_id), self.options.lpips_pairs)

    def lpips_members(self, class_id: str) -> frozenset[int]:
        return frozenset(int(i) for i in np.unique(self.lpips_pairs(class_id)))

    def key(self, name: str) -> str:
        return layout.score_key(self.study_id, self.cell.generator, self.cell.cfg, self.cell.strategy, name)


_PAIR_CACHE: dict[tuple[Any, ...], np.ndarray] = {}


def _pairs(study: str, generator: str, strategy: str, class_id: str, n: int, count: int) -> np.ndarray:
    key = (study, generator, strategy, class_id, n, count)
    if key in _PAIR_CACHE:
        return _PAIR_CACHE[key]
    if n < 2 or count == 0:
        out = np.zeros((0, 2), dtype=np.int64)
    elif n * (n - 1) // 2 <= count:
        i, j = np.triu_indices(n, k=1)
        out = np.stack([i, j], axis=1).astype(np.int64)
    else:
        rng = np.random.default_rng(int(ids.digest(study, generator, strategy, class_id, "lpips"), 16))
        chosen: dict[tuple[int, int], None] = {}
        while len(chosen) < count:
            a, b = (int(v) for v in rng.integers(0, n, size=2))
            if a != b:
                chosen.setdefault((min(a, b), max(a, b)), None)
        out = np.array(sorted(chosen), dtype=np.int64)
    if len(_PAIR_CACHE) > 4096:
        _PAIR_CACHE.clear()
    _PAIR_CACHE[key] = out
    return out


def plan_from_spec(spec: StudySpec, study_id: str, cell: Cell,
                   env: Mapping[str, str] | None = None) -> CellPlan:
    """The plan of a cell of a stored study: images per class = max(images_per_class)."""
    gen, _ = plan.find_cell(spec, cell, study_id)
    classes = plan.study_classes(spec)
    n = spec.max_images_per_class
    mode = "L" if gen.backend == "embedded" else "RGB"
    return CellPlan(
        study_id=study_id, cell=cell, class_ids=classes.ids, class_names=classes.names,
        class_set=classes.name, per_class=dict.fromkeys(classes.ids, n),
        options=ScoringOptions.from_spec(spec.scoring, env), image_mode=mode,
        image_size=(gen.resolution, gen.resolution), real_set=spec.real.set,
        real_path=spec.real.path, generator_backend=gen.backend,
    )
