"""Per-shard scoring: decode, check, batch, run the networks, reduce to a ShardPartial.

Images flow through in batches of `options.batch_size`; each batch is reduced to sums
and discarded, so a shard of any size is scored with bounded memory. `StreamMeter`
counts the image rows alive at any moment (what the streaming test asserts on).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from synscale.shards import ShardProblem, decode_png, iter_shard
from synscale_scorer.partial import ClassPart, ShardPartial
from synscale_scorer.plan import CellPlan
from synscale_scorer.reference.base import Reference, columns_for
from synscale_scorer.stats import FeatureMoments

log = logging.getLogger(__name__)

FeatureFn = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class Networks:
    """The models a scorer runs; any may be None when its metrics are switched off."""

    reference: Reference | None = None
    inception: FeatureFn | None = None
    inception_dim: int = 2048
    lpips: torch.nn.Module | None = None
    extractor_id: str = ""


@dataclass
class StreamMeter:
    """Counts image rows held in memory: live (in the batch being built or run) and
    retained (kept for samples or as raw feature rows). Peaks are what tests check."""

    live: int = 0
    peak_live: int = 0
    retained: int = 0
    peak_retained: int = 0
    batches: int = 0
    images: int = 0

    def hold(self, n: int) -> None:
        self.live += n
        self.peak_live = max(self.peak_live, self.live)

    def release(self, n: int) -> None:
        self.live -= n

    def retain(self, n: int) -> None:
        self.retained += n
        self.peak_retained = max(self.peak_retained, self.retained)

    def drop(self, n: int) -> None:
        self.retained -= n


@dataclass
class _Pending:
    images: list[np.ndarray] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    indices: list[int] = field(default_factory=list)


def image_array(image: Any) -> np.ndarray:
    """PIL image → uint8 (C, H, W)."""
    arr = np.asarray(image, dtype=np.uint8)
    return arr[None] if arr.ndim == 2 else np.ascontiguousarray(arr.transpose(2, 0, 1))


class PartialBuilder:
    """Accumulates one shard's ShardPartial from (image, class, index) triples."""

    def __init__(self, plan: CellPlan, nets: Networks, shard: str, sha256: str = "",
                 meter: StreamMeter | None = None) -> None:
        self.plan = plan
        self.nets = nets
        self.opts = plan.options
        self.meter = meter or StreamMeter()
        self.partial = ShardPartial(shard, sha256)
        self.pending = _Pending()
        self.use_reference = nets.reference is not None and (
            self.opts.recognizability or self.opts.diversity)
        self.use_inception = nets.inception is not None and self.opts.fid
        self.use_lpips = self.opts.lpips
        self.use_cas = self.opts.cas
        self.columns = (columns_for(nets.reference, plan.class_ids)
                        if self.use_reference and nets.reference is not None else [])
        self.rows: list[np.ndarray] = []
        self.n_rows = 0
        self.threshold = self.opts.rows_threshold or 2 * nets.inception_dim
        self._samples: dict[str, list[tuple[int, np.ndarray]]] = {}
        self._lpips: dict[str, list[tuple[int, np.ndarray]]] = {}
        self._cas: dict[str, list[tuple[int, np.ndarray]]] = {}
        self.partial.info = {
            "reference": getattr(nets.reference, "name", "") if self.use_reference else "",
            "extractor": nets.extractor_id if self.use_inception else "",
        }

    # -- input -------------------------------------------------------------------------
    def problem(self, key: str, reason: str) -> None:
        self.partial.skipped += 1
        self.partial.problems.append({"shard": self.partial.shard, "key": key, "reason": reason})

    def add(self, image: np.ndarray, class_id: str, index: int) -> None:
        self.pending.images.append(image)
        self.pending.labels.append(class_id)
        self.pending.indices.append(index)
        self.meter.hold(1)
        if self.use_lpips and index in self.plan.lpips_members(class_id):
            self._lpips.setdefault(class_id, []).append((index, image.copy()))
            self.meter.retain(1)
        if self.use_cas and index < self.opts.cas_per_class:  # CAS trains on these (cas.py)
            self._cas.setdefault(class_id, []).append((index, image.copy()))
            self.meter.retain(1)
        if len(self.pending.images) >= self.opts.batch_size:
            self.flush()

    # -- batches -----------------------------------------------------------------------
    def flush(self) -> None:
        p = self.pending
        if not p.images:
            return
        batch = torch.from_numpy(np.stack(p.images))
        self.meter.batches += 1
        self.meter.images += len(p.images)
        if self.use_reference:
            assert self.nets.reference is not None
            logits, feats = self.nets.reference(batch)
            pred = logits[:, self.columns].argmax(1).numpy()
            self._add_reference(p.labels, pred, feats.double().numpy())
        for cid in p.labels:
            part = self._part(cid)
            part.n += 1
        if self.use_inception:
            assert self.nets.inception is not None
            rows = self.nets.inception(batch).float().numpy()
            self._add_inception(rows, p.labels, p.indices)
        self.meter.release(len(p.images))
        self.pending = _Pending()

    def _part(self, cid: str) -> ClassPart:
        if cid not in self.partial.classes:
            self.partial.classes[cid] = ClassPart()
        return self.partial.classes[cid]

    def _add_reference(self, class_ids: list[str], pred: np.ndarray, feats: np.ndarray) -> None:
        n_classes = len(self.plan.class_ids)
        for cid in dict.fromkeys(class_ids):
            mask = np.array([c == cid for c in class_ids])
            part = self._part(cid)
            if part.confusion is None:
                part.confusion = np.zeros(n_classes, np.int64)
                part.ref_sum = np.zeros(feats.shape[1], np.float64)
                part.ref_sumsq = np.zeros(feats.shape[1], np.float64)
            assert part.ref_sum is not None and part.ref_sumsq is not None
            part.confusion += np.bincount(pred[mask], minlength=n_classes)
            part.ref_sum += feats[mask].sum(0)
            part.ref_sumsq += np.square(feats[mask]).sum(0)

    def _add_inception(self, rows: np.ndarray, class_ids: list[str], indices: list[int]) -> None:
        for row, cid, idx in zip(rows, class_ids, indices, strict=True):
            if idx < self.opts.fid_samples_per_class:
                self._samples.setdefault(cid, []).append((idx, row.copy()))
                self.meter.retain(1)
        if self.partial.inception_moments is not None:
            self.partial.inception_moments.add_rows(rows)
            return
        self.rows.append(rows)
        self.n_rows += len(rows)
        self.meter.retain(len(rows))
        if self.n_rows > self.threshold:  # rows now cost more than the O(d²) sums
            moments = FeatureMoments(rows.shape[1])
            for r in self.rows:
                moments.add_rows(r)
            self.partial.inception_moments = moments
            self.meter.drop(self.n_rows)
            self.rows, self.n_rows = [], 0

    # -- result ------------------------------------------------------------------------
    def finish(self) -> ShardPartial:
        self.flush()
        if self.rows:
            self.partial.inception_rows = np.concatenate(self.rows).astype(np.float32)
        for cid, items in self._samples.items():
            items.sort(key=lambda t: t[0])
            part = self._part(cid)
            part.sample_index = np.array([i for i, _ in items], np.int64)
            part.sample_rows = np.stack([r for _, r in items]).astype(np.float32)
        for cid, items in self._lpips.items():
            part = self._part(cid)
            part.lpips_index, part.lpips_images = _by_index(items)
        for cid, items in self._cas.items():
            part = self._part(cid)
            part.cas_index, part.cas_images = _by_index(items)
        return self.partial


def _by_index(items: list[tuple[int, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """(indices, stacked images) of retained (index, image) pairs, in index order."""
    items.sort(key=lambda t: t[0])
    return np.array([i for i, _ in items], np.int64), np.stack([im for _, im in items])


def check_sample(plan: CellPlan, png: bytes, meta: dict[str, Any],
                 fmt: list[Any]) -> tuple[np.ndarray, str, int]:
    """(image (C, H, W), class id, index) of a sample, or ValueError saying what is wrong.

    `fmt` is [mode, size]: the plan's, else set by the first good image of the shard.
    """
    class_id = meta.get("class_id")
    if not isinstance(class_id, str) or not class_id:
        raise ValueError("meta has no class_id")
    if class_id not in plan.labels:
        raise ValueError(f"class_id {class_id!r} is not one of the cell's classes")
    index = meta.get("index")
    if not isinstance(index, int) or isinstance(index, bool) or index < 0:
        raise ValueError(f"meta index {index!r} is not a non-negative integer")
    expected = plan.expected(class_id)
    if expected and index >= expected:
        raise ValueError(f"index {index} is outside 0..{expected - 1} of class {class_id}")
    image = decode_png(png, mode=fmt[0], size=fmt[1])
    if image.mode not in ("L", "RGB"):
        raise ValueError(f"image mode is {image.mode}, expected L or RGB")
    if fmt[0] is None:
        fmt[0] = image.mode
    if fmt[1] is None:
        fmt[1] = image.size
    return image_array(image), class_id, index


def score_samples(builder: PartialBuilder, samples: Iterable[Any]) -> ShardPartial:
    """Feed WebDataset samples (key, png, meta) into `builder`, reporting bad ones."""
    fmt: list[Any] = [builder.plan.image_mode, builder.plan.image_size]
    seen: set[tuple[str, int]] = set()
    for sample in samples:
        try:
            image, class_id, index = check_sample(builder.plan, sample.png, sample.meta, fmt)
        except ValueError as exc:
            builder.problem(sample.key, _stable(str(exc)))
            continue
        if (class_id, index) in seen:
            builder.problem(sample.key, f"duplicate image {class_id}#{index} in the shard")
            continue
        seen.add((class_id, index))
        builder.add(image, class_id, index)
    return builder.finish()


def score_shard_bytes(plan: CellPlan, nets: Networks, data: bytes, shard: str, sha256: str = "",
                      meter: StreamMeter | None = None) -> ShardPartial:
    """The partial of one tar shard; tar-level damage is reported by iter_shard."""
    problems: list[ShardProblem] = []
    builder = PartialBuilder(plan, nets, shard, sha256, meter)
    partial = score_samples(builder, iter_shard(data, problems))
    for p in problems:
        builder.problem(p.key, p.reason)
    if partial.skipped:
        log.warning("shard %s: %d sample(s) skipped, e.g. %s", shard, partial.skipped,
                    partial.problems[0]["reason"])
    return partial


_ADDRESS = re.compile(r"<[^<>]* at 0x[0-9a-fA-F]+>")


def _stable(reason: str) -> str:
    """Drop object addresses (PIL names its BytesIO) so a recomputed partial has the same bytes."""
    return _ADDRESS.sub("<bytes>", reason)
