"""The per-shard partial statistics, and their deterministic serialisation.

A partial holds everything the cell needs from one shard and nothing that grows with the
cell: per-class counts, confusion rows, reference-feature sums, Inception statistics
(raw float32 rows while that is smaller than the float64 sums, else n/Σx/Σxxᵀ), the
shard's members of the per-class FID sample and of the LPIPS pair sample, and the
problems met. With CAS on (off by default) it also keeps the images CAS trains on, the
ones with index < `cas_per_class`: bounded by that cap, not by the cell. Written to
`score_key(..., "partials/<shard name>.npz")`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from synscale_scorer import npzio
from synscale_scorer.stats import FeatureMoments

FORMAT = 1
_ARRAYS = ("confusion", "ref_sum", "ref_sumsq", "sample_rows", "lpips_images", "cas_images")


@dataclass
class ClassPart:
    n: int = 0
    confusion: np.ndarray | None = None  # (C,) predicted-label counts
    ref_sum: np.ndarray | None = None  # (Dr,) float64
    ref_sumsq: np.ndarray | None = None
    sample_index: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    sample_rows: np.ndarray | None = None  # (k, d) float32 Inception rows, index < K
    lpips_index: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    lpips_images: np.ndarray | None = None  # (m, C, H, W) uint8
    cas_index: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    cas_images: np.ndarray | None = None  # (m, C, H, W) uint8: the CAS training images, index < cap


@dataclass
class ShardPartial:
    shard: str
    sha256: str = ""
    classes: dict[str, ClassPart] = field(default_factory=dict)
    inception_rows: np.ndarray | None = None  # (n, d) float32, or:
    inception_moments: FeatureMoments | None = None
    problems: list[dict[str, str]] = field(default_factory=list)
    skipped: int = 0
    info: dict[str, Any] = field(default_factory=dict)  # reference, extractor, image format

    @property
    def scored(self) -> int:
        return sum(p.n for p in self.classes.values())

    def inception(self) -> FeatureMoments | None:
        if self.inception_moments is not None:
            return self.inception_moments
        if self.inception_rows is not None:
            return FeatureMoments.of_rows(self.inception_rows)
        return None

    def to_bytes(self) -> bytes:
        arrays: dict[str, np.ndarray] = {}
        order = sorted(self.classes)
        for i, cid in enumerate(order):
            part = self.classes[cid]
            arrays[f"c{i}.n"] = np.array(part.n, dtype=np.int64)
            for name in _ARRAYS:
                value = getattr(part, name)
                if value is not None:
                    arrays[f"c{i}.{name}"] = value
            arrays[f"c{i}.sample_index"] = part.sample_index.astype(np.int64)
            arrays[f"c{i}.lpips_index"] = part.lpips_index.astype(np.int64)
            if len(part.cas_index):
                arrays[f"c{i}.cas_index"] = part.cas_index.astype(np.int64)
        if self.inception_rows is not None:
            arrays["inception.rows"] = self.inception_rows.astype(np.float32)
        if self.inception_moments is not None:
            m = self.inception_moments
            arrays["inception.n"] = np.array(m.n, dtype=np.int64)
            arrays["inception.total"] = m.total
            arrays["inception.outer"] = m.outer
        meta = {"format": FORMAT, "shard": self.shard, "sha256": self.sha256, "classes": order,
                "problems": self.problems, "skipped": self.skipped, "info": self.info}
        return npzio.dumps(arrays, meta)

    @classmethod
    def from_bytes(cls, data: bytes) -> ShardPartial:
        arrays, meta = npzio.loads(data)
        if meta.get("format") != FORMAT:
            raise ValueError(f"partial format {meta.get('format')!r}, expected {FORMAT}")
        out = cls(meta["shard"], meta.get("sha256", ""), problems=list(meta.get("problems", [])),
                  skipped=int(meta.get("skipped", 0)), info=dict(meta.get("info", {})))
        for i, cid in enumerate(meta["classes"]):
            part = ClassPart(n=int(arrays[f"c{i}.n"]))
            for name in _ARRAYS:
                setattr(part, name, arrays.get(f"c{i}.{name}"))
            part.sample_index = arrays[f"c{i}.sample_index"]
            part.lpips_index = arrays[f"c{i}.lpips_index"]
            part.cas_index = arrays.get(f"c{i}.cas_index", np.zeros(0, np.int64))
            out.classes[cid] = part
        out.inception_rows = arrays.get("inception.rows")
        if "inception.outer" in arrays:
            outer = arrays["inception.outer"]
            out.inception_moments = FeatureMoments(
                int(outer.shape[0]), int(arrays["inception.n"]), arrays["inception.total"], outer
            )
        return out
