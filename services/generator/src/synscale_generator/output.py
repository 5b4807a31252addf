"""Shards: which images go where, what is already done, and the shard-ready events.

One GenerationJob becomes one shard at `layout.shard_key(...)` of its seed range (or
several, one per `shard_size` images, each keyed by its own range). Sample keys and
seeds are pure functions of the job identity, and shard bytes are deterministic, so a
redelivered job rewrites an identical object. Before generating, a shard that already
exists is verified (its bytes hash to the recorded sha256, and it was written for the
same inputs: prompts, seeds, model settings); such a shard is announced again with
`reannounced=true` and nothing is generated or written.
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image, ImageDraw

from synscale import ids, layout
from synscale.shards import Sample, ShardProblem, decode_png, iter_shard, write_shard
from synscale.store.base import ObjectStore
from synscale.v1 import common_pb2, generator_pb2, prompter_pb2, study_pb2

log = logging.getLogger(__name__)

META_KEYS = ("study_id", "generator", "cfg", "strategy", "class_id", "class_index", "index", "seed", "prompt")
INPUTS_METADATA = "synscale-inputs"  # object metadata: fingerprint of what the shard was made from
COUNT_METADATA = "synscale-count"


@dataclass(frozen=True)
class ShardPlan:
    """One shard to produce: its key, its prompts and their seeds."""

    job: generator_pb2.GenerationJob
    shard_index: int
    key: str
    seed_start: int
    prompts: tuple[str, ...]
    indices: tuple[int, ...]
    seeds: tuple[int, ...]

    @property
    def count(self) -> int:
        return len(self.prompts)

    def identity(self) -> common_pb2.JobIdentity:
        ident = common_pb2.JobIdentity()
        ident.CopyFrom(self.job.job)
        ident.seed_start, ident.seed_count = self.seed_start, self.count
        return ident

    def fingerprint(self) -> str:
        """Digest of every input that decides the shard's images (batch size only schedules)."""
        spec = self.job.generator
        settings = {
            "backend": spec.backend, "model_path": spec.model_path, "resolution": spec.resolution,
            "steps": spec.steps, "scheduler": spec.scheduler, "dtype": spec.dtype,
            "negative_prompt": spec.negative_prompt, "options": dict(sorted(spec.options.items())),
        }
        if spec.HasField("eta"):  # unset keeps the fingerprints of jobs written before the field
            settings["eta"] = float(spec.eta)
        return ids.digest(self.key, settings, self.job.job.cell.cfg, list(self.prompts), list(self.seeds),
                          length=32)

    def meta(self, i: int) -> dict[str, object]:
        ident = self.job.job
        return {
            "study_id": ident.study_id, "generator": ident.cell.generator, "cfg": float(ident.cell.cfg),
            "strategy": ident.cell.strategy, "class_id": ident.class_id,
            "class_index": int(self.job.class_index), "index": int(self.indices[i]),
            "seed": int(self.seeds[i]), "prompt": self.prompts[i],
        }


def make_job(
    study_id: str, spec: study_pb2.GeneratorSpec, cfg: float, strategy: str, class_id: str,
    texts: Sequence[str], *, class_index: int = 0, seed_start: int = 0, bucket: str = "",
    shard_size: int = 0,
) -> generator_pb2.GenerationJob:
    """A GenerationJob as the prompter builds it: prompts indexed from `seed_start`."""
    identity = common_pb2.JobIdentity(
        study_id=study_id, cell=common_pb2.CellId(generator=spec.name, cfg=cfg, strategy=strategy),
        class_id=class_id, seed_start=seed_start, seed_count=len(texts))
    prompts = [prompter_pb2.Prompt(class_id=class_id, strategy=strategy, index=seed_start + i, text=t)
               for i, t in enumerate(texts)]
    return generator_pb2.GenerationJob(job=identity, generator=spec, prompts=prompts,
                                       class_index=class_index, bucket=bucket, shard_size=shard_size)


def plan_shards(job: generator_pb2.GenerationJob) -> list[ShardPlan]:
    """The shards of a validated job, in seed order."""
    ident = job.job
    n = len(job.prompts)
    size = job.shard_size if 0 < job.shard_size < n else n
    plans = []
    for shard_index, start in enumerate(range(0, n, size)):
        chunk = job.prompts[start:start + size]
        seed_start = int(ident.seed_start) + start
        plans.append(ShardPlan(
            job=job, shard_index=shard_index,
            key=layout.shard_key(ident.study_id, ident.cell.generator, ident.cell.cfg, ident.cell.strategy,
                              ident.class_id, seed_start, len(chunk)),
            seed_start=seed_start,
            prompts=tuple(p.text for p in chunk),
            indices=tuple(int(p.index) for p in chunk),
            seeds=tuple(ids.image_seed(ident.study_id, ident.cell.generator, ident.cell.strategy,
                                       ident.class_id, int(p.index)) for p in chunk),
        ))
    return plans


def shard_ref(plan: ShardPlan, bucket: str, sha256: str, size: int) -> common_pb2.ShardRef:
    return common_pb2.ShardRef(bucket=bucket, key=plan.key, sha256=sha256, count=plan.count,
                               size_bytes=size, job=plan.identity(), shard_index=plan.shard_index)


def find_existing(store: ObjectStore, plan: ShardPlan) -> common_pb2.ShardRef | None:
    """The ref of a finished, intact shard made from the same inputs, else None."""
    info = store.stat(plan.key)
    if info is None:
        return None
    if info.metadata.get(INPUTS_METADATA) != plan.fingerprint():
        log.info("shard %s exists but was made from other inputs; regenerating", plan.key)
        return None
    data = store.get(plan.key)
    actual = hashlib.sha256(data).hexdigest()
    if not info.sha256 or actual != info.sha256:
        log.warning("shard %s fails its checksum (recorded %s, actual %s); regenerating",
                    plan.key, info.sha256[:12], actual[:12])
        return None
    problem = _content_problem(plan, data)
    if problem:
        log.warning("shard %s is damaged (%s); regenerating", plan.key, problem)
        return None
    return shard_ref(plan, store.bucket, actual, len(data))


def _content_problem(plan: ShardPlan, data: bytes) -> str | None:
    """Every planned sample is there, with the planned meta and a decodable PNG.

    The recorded sha256 alone cannot vouch for a shard: a filesystem store rehashes a
    file whose size or mtime changed, so damage done behind its back goes unnoticed.
    """
    problems: list[ShardProblem] = []
    samples = list(iter_shard(data, problems))
    if problems:
        return problems[0].reason
    if len(samples) != plan.count:
        return f"{len(samples)} samples, {plan.count} planned"
    class_id = plan.job.job.class_id
    for i, sample in enumerate(samples):
        if sample.key != ids.sample_key(class_id, plan.indices[i]) or sample.meta != plan.meta(i):
            return f"sample {i} is not the planned one"
        try:
            decode_png(sample.png)
        except ValueError as exc:
            return f"sample {sample.key}: {exc}"
    return None


def build_shard(plan: ShardPlan, pngs: Sequence[bytes]) -> bytes:
    if len(pngs) != plan.count:
        raise ValueError(f"shard {plan.key} needs {plan.count} images, got {len(pngs)}")
    class_id = plan.job.job.class_id
    return write_shard(
        Sample(ids.sample_key(class_id, plan.indices[i]), png, plan.meta(i)) for i, png in enumerate(pngs)
    )


def write_planned(store: ObjectStore, plan: ShardPlan, pngs: Sequence[bytes]) -> common_pb2.ShardRef:
    """Write the shard (skipped by the store when identical bytes are already there)."""
    data = build_shard(plan, pngs)
    info, wrote = store.put_if_changed(
        plan.key, data, content_type="application/x-tar",
        metadata={INPUTS_METADATA: plan.fingerprint(), COUNT_METADATA: str(plan.count)},
    )
    log.debug("%s shard %s (%d images, %d bytes)", "wrote" if wrote else "kept identical", plan.key,
             plan.count, len(data))
    return shard_ref(plan, store.bucket, info.sha256 or hashlib.sha256(data).hexdigest(), len(data))


def shard_ready(ref: common_pb2.ShardRef, reannounced: bool) -> generator_pb2.ShardReady:
    return generator_pb2.ShardReady(shard=ref, reannounced=reannounced)


def tile_grid(
    images: Sequence[Sequence[Image.Image]], *, pad: int = 2, scale: int = 1, block: int = 0,
    row_labels: Sequence[str] = (), block_labels: Sequence[str] = (), label_width: int = 80,
) -> Image.Image:
    """Images in rows (one per class), with a wider gap after every `block` columns.

    `row_labels` name the rows in a left margin of `label_width` pixels; `block_labels`
    head each block of columns (one block per CFG value), so the grid reads on its own.
    """
    cells = [im for row in images for im in row]
    if not cells:
        raise ValueError("no images for the grid")
    w = max(im.width for im in cells) * scale
    h = max(im.height for im in cells) * scale
    cols = max(len(row) for row in images)
    gap = 3 * pad if block else pad
    left = label_width if row_labels else 0
    top = 14 if block_labels else 0

    def x_of(c: int) -> int:
        return left + pad + c * (w + pad) + (c // block) * (gap - pad if block else 0)

    mode = "L" if all(im.mode == "L" for im in cells) else "RGB"
    white, black = (255, 0) if mode == "L" else ((255, 255, 255), (0, 0, 0))
    grid = Image.new(mode, (x_of(cols - 1) + w + pad, top + len(images) * (h + pad) + pad), color=white)
    draw = ImageDraw.Draw(grid)
    for k, label in enumerate(block_labels):
        draw.text((x_of(k * block if block else k), 1), label, fill=black)
    for r, row in enumerate(images):
        y = top + pad + r * (h + pad)
        if r < len(row_labels):
            draw.text((2, y + h // 2 - 5), row_labels[r][: max(1, label_width // 6)], fill=black)
        for c, im in enumerate(row):
            grid.paste(im.convert(mode).resize((w, h), Image.Resampling.NEAREST), (x_of(c), y))
    return grid


def grid_png(
    rows: Sequence[Sequence[bytes]], scale: int = 1, block: int = 0,
    row_labels: Sequence[str] = (), block_labels: Sequence[str] = (),
) -> bytes:
    """`tile_grid` of encoded samples, as PNG bytes."""
    images = [[decode_png(png) for png in row] for row in rows]
    buf = io.BytesIO()
    tile_grid(images, scale=scale, block=block, row_labels=row_labels, block_labels=block_labels).save(
        buf, format="PNG")
    return buf.getvalue()


def grid_scale(image_size: int, target: int = 96) -> int:
    """Upscale tiny images (32x32) so a grid is readable."""
    return max(1, math.ceil(target / max(1, image_size)))
