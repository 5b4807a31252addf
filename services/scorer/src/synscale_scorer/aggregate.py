"""Merging shard partials into a cell's scores, one partial at a time.

Memory stays bounded whatever the cell size: Inception statistics are O(d²) float64 sums;
a class's per-class FID sample (≤ fid_samples_per_class rows) and LPIPS sample are kept
only until that class's sample is complete, then reduced to numbers and dropped (partials
arrive sorted by name, i.e. class by class). Only bounded KID rows outlive a class.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np
import torch

from synscale import ids
from synscale_scorer import metrics
from synscale_scorer.cas import CasRecipe, CasResult, for_classes
from synscale_scorer.partial import ShardPartial
from synscale_scorer.perceptual import pairwise_lpips
from synscale_scorer.plan import CellPlan
from synscale_scorer.real import RealFeatureCache
from synscale_scorer.report import CellScores, ClassScores
from synscale_scorer.stats import FeatureMoments, fid_of_rows, frechet_distance, kernel_inception_distance

log = logging.getLogger(__name__)


@dataclass
class _ClassAcc:
    n: int = 0
    confusion: np.ndarray | None = None
    ref_sum: np.ndarray | None = None
    ref_sumsq: np.ndarray | None = None
    sample: dict[int, np.ndarray] = field(default_factory=dict)
    lpips_images: dict[int, np.ndarray] = field(default_factory=dict)
    cas_images: dict[int, np.ndarray] = field(default_factory=dict)
    fid: float = math.nan
    fid_n: int = 0
    fid_done: bool = False
    lpips: float = math.nan
    lpips_pairs: int = 0
    lpips_done: bool = False


class CellAggregator:
    def __init__(self, plan: CellPlan, real: RealFeatureCache | None = None,
                 lpips_model: torch.nn.Module | None = None) -> None:
        self.plan = plan
        self.real = real
        self.lpips_model = lpips_model
        self.classes: dict[str, _ClassAcc] = {c: _ClassAcc() for c in plan.class_ids}
        self.fake: FeatureMoments | None = None
        self.kid_fake: list[np.ndarray] = []
        self.kid_real: list[np.ndarray] = []
        self.kid_per_class = max(1, math.ceil(plan.options.kid_max_rows / max(1, len(plan.class_ids))))
        self.problems: list[dict[str, str]] = []
        self.problems_total = 0
        self.skipped = 0
        self.partials: list[str] = []
        self.notes: list[str] = []
        self.info: dict[str, str] = {}

    # -- merging -----------------------------------------------------------------------
    def add(self, partial: ShardPartial) -> None:
        self.partials.append(partial.shard)
        self.skipped += partial.skipped
        self.problems_total += len(partial.problems)
        room = self.plan.options.max_problems - len(self.problems)
        self.problems.extend(partial.problems[: max(0, room)])
        for k, v in partial.info.items():
            if v:
                self.info.setdefault(k, v)
        moments = partial.inception()
        if moments is not None:
            self.fake = self.fake or FeatureMoments(moments.dim)
            self.fake.merge(moments)
        for cid, part in partial.classes.items():
            acc = self.classes.get(cid)
            if acc is None:
                self._problem(partial.shard, cid, "class is not one of the cell's classes", part.n)
                continue
            acc.n += part.n
            if part.confusion is not None:
                acc.confusion = _add(acc.confusion, part.confusion)
                acc.ref_sum = _add(acc.ref_sum, part.ref_sum)
                acc.ref_sumsq = _add(acc.ref_sumsq, part.ref_sumsq)
            if part.sample_rows is not None:
                acc.sample.update(zip(part.sample_index.tolist(), part.sample_rows, strict=True))
            if part.lpips_images is not None:
                acc.lpips_images.update(zip(part.lpips_index.tolist(), part.lpips_images, strict=True))
            if part.cas_images is not None:
                acc.cas_images.update(zip(part.cas_index.tolist(), part.cas_images, strict=True))
            self._maybe_finish_class(cid, acc)

    def _problem(self, shard: str, key: str, reason: str, count: int) -> None:
        self.skipped += count
        self.problems_total += 1
        if len(self.problems) < self.plan.options.max_problems:
            self.problems.append({"shard": shard, "key": key, "reason": reason})

    def _maybe_finish_class(self, cid: str, acc: _ClassAcc, final: bool = False) -> None:
        want = self.plan.fid_sample_size(cid)
        if not acc.fid_done and acc.sample and (final or len(acc.sample) >= want):
            self._class_fid(cid, acc)
        members = self.plan.lpips_members(cid) if self.plan.options.lpips else frozenset()
        if not acc.lpips_done and acc.lpips_images and (final or members <= acc.lpips_images.keys()):
            self._class_lpips(cid, acc)

    def _class_fid(self, cid: str, acc: _ClassAcc) -> None:
        order = sorted(acc.sample)
        fake = np.stack([acc.sample[i] for i in order])
        acc.fid_n = len(order)
        acc.fid_done = True
        acc.sample.clear()
        if self.real is None:
            return
        real = self.real.class_rows(cid)
        acc.fid = fid_of_rows(real, fake)
        self.kid_fake.append(fake[: self.kid_per_class])
        self.kid_real.append(real[: self.kid_per_class])

    def _class_lpips(self, cid: str, acc: _ClassAcc) -> None:
        acc.lpips_done = True
        pairs = self.plan.lpips_pairs(cid)
        have = acc.lpips_images
        pairs = np.array([p for p in pairs if p[0] in have and p[1] in have], dtype=np.int64).reshape(-1, 2)
        if self.lpips_model is not None and len(pairs):
            order = sorted(have)
            pos = {idx: k for k, idx in enumerate(order)}
            images = torch.from_numpy(np.stack([have[i] for i in order]))
            local = np.vectorize(pos.__getitem__)(pairs).reshape(-1, 2)
            d = pairwise_lpips(self.lpips_model, images, local, min_size=self.plan.options.lpips_min_size)
            acc.lpips, acc.lpips_pairs = float(d.mean()), len(pairs)
        acc.lpips_images.clear()

    # -- result ------------------------------------------------------------------------
    def finish(self) -> CellScores:
        plan = self.plan
        for cid, acc in self.classes.items():
            self._maybe_finish_class(cid, acc, final=True)
            if acc.fid_done and 0 < acc.fid_n < plan.fid_sample_size(cid):
                self.notes.append(f"{cid}: per-class FID on {acc.fid_n} < {plan.fid_sample_size(cid)} images")
        n_cls = len(plan.class_ids)
        confusion = np.zeros((n_cls, n_cls), np.int64)
        have_ref = False
        for i, cid in enumerate(plan.class_ids):
            conf = self.classes[cid].confusion
            if conf is not None:
                confusion[i] = conf
                have_ref = True
        missing = metrics.PRF(math.nan, math.nan, math.nan)
        prf = metrics.precision_recall_f1(confusion) if have_ref else [missing] * n_cls
        rows = []
        names = plan.class_names if len(plan.class_names) == n_cls else plan.class_ids
        for i, cid in enumerate(plan.class_ids):
            acc = self.classes[cid]
            div = math.nan
            if acc.ref_sum is not None and acc.ref_sumsq is not None and plan.options.diversity:
                div = metrics.feature_std(acc.n, acc.ref_sum, acc.ref_sumsq)
            rec = prf[i] if plan.options.recognizability else missing
            rows.append(ClassScores(cid, names[i], acc.n, rec.precision, rec.recall, rec.f1, div,
                                    acc.lpips, acc.lpips_pairs, acc.fid, acc.fid_n))
        fid = kid_mean = kid_std = math.nan
        if self.real is not None and self.fake is not None and self.fake.n >= 2:
            fid = frechet_distance(self.real.overall(plan.class_ids), self.fake)
        if self.kid_fake:
            kid_mean, kid_std = kernel_inception_distance(
                np.concatenate(self.kid_real), np.concatenate(self.kid_fake),
                subsets=plan.options.kid_subsets, subset_size=plan.options.kid_subset_size,
                seed=int(ids.digest(plan.study_id, str(plan.cell), "kid"), 16) % (2**31),
            )
        if plan.options.fid and self.real is None:
            self.notes.append("FID/KID skipped: no real set")
        cas = self._cas()
        return CellScores(
            study_id=plan.study_id, cell=plan.cell, classes=rows,
            macro_f1=metrics.macro_f1([metrics.PRF(r.precision, r.recall, r.f1) for r in rows]),
            diversity=metrics.nanmean([r.diversity_std for r in rows]),
            fid=fid, fid_n=self.fake.n if self.fake is not None else 0,
            kid_mean=kid_mean, kid_std=kid_std,
            lpips=metrics.nanmean([r.lpips for r in rows]),
            scored=sum(r.n for r in rows), skipped=self.skipped,
            problems=self.problems, problems_total=self.problems_total,
            confusion=confusion.tolist() if have_ref else [],
            reference=self.info.get("reference", ""), extractor=self.info.get("extractor", ""),
            options=plan.options.as_dict(), shards=sorted(self.partials), notes=self.notes,
            cas=cas.accuracy if cas else math.nan, cas_low=cas.low if cas else math.nan,
            cas_high=cas.high if cas else math.nan, cas_n=cas.n_train if cas else 0,
        )

    def _cas(self) -> CasResult | None:
        """CAS of the retained images (cas.py), or None with a note saying why not."""
        if not self.plan.options.cas:
            return None
        cap = self.plan.options.cas_max_steps
        recipe = CasRecipe(min_steps=min(CasRecipe.min_steps, cap), max_steps=cap)
        per_class = {cid: acc.cas_images for cid, acc in self.classes.items() if acc.cas_images}
        result, note = for_classes(per_class, self.plan.class_ids, recipe)
        if note:
            self.notes.append(note)
        for acc in self.classes.values():
            acc.cas_images.clear()
        return result


def _add(total: np.ndarray | None, part: np.ndarray | None) -> np.ndarray | None:
    if part is None:
        return total
    return part.copy() if total is None else total + part
