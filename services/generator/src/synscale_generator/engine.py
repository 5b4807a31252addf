"""The generation engine: batched, reproducible, memory-aware sampling, and the job runner.

`Engine` runs a backend over many (prompt, seed) requests:

- batches across prompts and classes up to a batch size that is the smallest of the
  requested size, a memory estimate (free GPU memory, or available RAM) and what an
  earlier out-of-memory left; an OOM halves the batch and retries the same images;
- every call is padded to exactly that batch size (filler copies, dropped after).
  Each image has its own seeded generator, but seeds alone do not make an image
  independent of its companions: CPU GEMM and convolution kernels pick their blocking
  by the batch dimension (measured here: a 1280x1280 linear layer gives other bits at
  M=1..15 than at M=64; a conv at N=1 other bits than at N>=2), GPU libraries pick
  kernels by shape too. At a fixed shape every kernel computes each row the same way
  wherever it sits (verified: permuting a batch permutes the outputs bit for bit), so
  an image is bit-identical whatever batch it ran in, for a given device and batch
  size. Partial batches cost the padding; `pad_batches=False` trades that guarantee for
  speed. On CUDA, cuDNN autotuning is off and deterministic algorithms on, so kernel
  choice is a function of the shape alone;
- `torch.inference_mode` around every call, one call at a time per engine (the device
  is the bottleneck, and scheduler objects are stateful);
- PNG encoding in a thread pool, off the critical path: the next batch samples while
  the last one encodes.

`JobRunner` turns GenerationJobs into shards: validates them, skips shards that already
exist intact (re-announcing them), groups the remaining images by (model, sampling
parameters) so one batch can span jobs and classes, and writes each shard in a writer
thread as soon as its images are encoded.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from synscale.shards import encode_png
from synscale.store.base import ObjectStore
from synscale.v1 import common_pb2, generator_pb2

from .backends import Backend, BackendSettings, ModelCache, SamplingParams, default_device
from .output import ShardPlan, find_existing, plan_shards, shard_ready, write_planned
from .validation import params_for, settings_for, validate_job

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 64


def is_out_of_memory(exc: BaseException) -> bool:
    """CUDA's OutOfMemoryError, or a RuntimeError saying so (CPU allocators, older torch)."""
    oom = getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError
    return isinstance(exc, oom) or (isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower())


def _available_bytes(device: torch.device) -> int | None:
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        # blocks cached by torch's allocator are free for us too
        return int(free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device))
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


@dataclass(frozen=True)
class ImageRequest:
    prompt: str
    seed: int


@dataclass
class GeneratedBatch:
    """Images of requests[start : start + len(images)], and their PNG encodings under way."""

    start: int
    images: list[Any]
    pngs: list[Future[bytes]]
    batch_size: int  # the padded size the backend ran at


class Engine:
    """Batched sampling over a backend; see the module docstring for the guarantees."""

    def __init__(
        self, device: str | None = None, *, default_batch_size: int = DEFAULT_BATCH_SIZE,
        pad_batches: bool = True, png_workers: int = 2, memory_fraction: float = 0.8,
    ) -> None:
        self.device = torch.device(device or default_device())
        self.default_batch_size = default_batch_size
        self.pad_batches = pad_batches
        self.memory_fraction = memory_fraction
        self.pool = ThreadPoolExecutor(max_workers=png_workers, thread_name_prefix="png")
        self._lock = threading.Lock()
        self._limits: dict[tuple[int, SamplingParams], int] = {}
        self.last_batch_size = 0
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = False
            torch.backends.cudnn.deterministic = True

    def close(self) -> None:
        self.pool.shutdown(wait=True)

    # -- batch size --------------------------------------------------------------------
    def memory_cap(self, backend: Backend, params: SamplingParams) -> int | None:
        """Images that fit in memory by the backend's estimate, as a power of two.

        The power of two keeps the size stable when free memory wobbles a little, since
        the batch size is part of what makes an image's bits (see module docstring).
        """
        estimate = getattr(backend, "bytes_per_image", None)
        available = _available_bytes(self.device)
        if not callable(estimate) or available is None:
            return None
        fit = int(available * self.memory_fraction) // max(1, int(estimate(params)))
        return 1 << (fit.bit_length() - 1) if fit >= 1 else 1

    def batch_size(self, backend: Backend, params: SamplingParams, requested: int = 0) -> int:
        size = requested or self.default_batch_size
        cap = self.memory_cap(backend, params)
        if cap is not None:
            size = min(size, cap)
        limit = self._limits.get((id(backend), params))
        if limit is not None:
            size = min(size, limit)
        return max(1, size)

    # -- sampling ----------------------------------------------------------------------
    def run(
        self, backend: Backend, params: SamplingParams, requests: Sequence[ImageRequest], *,
        batch_size: int = 0, output_type: str = "pil", encode: bool = True,
    ) -> Iterator[GeneratedBatch]:
        """Yield batches in request order; PNG futures are filled for output_type "pil"."""
        i = 0
        while i < len(requests):
            size = self.batch_size(backend, params, batch_size)
            chunk = list(requests[i:i + size])
            try:
                images = self._call(backend, params, chunk, size, output_type)
            except Exception as exc:
                if not is_out_of_memory(exc) or size == 1:
                    raise
                self._limits[(id(backend), params)] = size // 2
                log.warning("out of memory at batch size %d; retrying at %d", size, size // 2)
                del exc
                self._free_memory()
                continue
            self.last_batch_size = size
            encoding = encode and output_type == "pil"
            pngs = [self.pool.submit(encode_png, im) for im in images] if encoding else []
            yield GeneratedBatch(i, images, pngs, size)
            i += len(chunk)

    def _call(
        self, backend: Backend, params: SamplingParams, chunk: list[ImageRequest], size: int,
        output_type: str,
    ) -> list[Any]:
        padded = chunk + [chunk[0]] * (size - len(chunk)) if self.pad_batches else chunk
        with self._lock, torch.inference_mode():
            images = backend.generate(
                [r.prompt for r in padded], [r.seed for r in padded], params.cfg, params.steps,
                params.negative_prompt, resolution=params.resolution, output_type=output_type,
            )
        if len(images) != len(padded):
            raise RuntimeError(f"backend {backend.name} returned {len(images)} images for "
                               f"{len(padded)} prompts")
        return list(images[:len(chunk)])

    def _free_memory(self) -> None:
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()


@dataclass(frozen=True)
class Progress:
    """What a run reports: images done of total, and each shard as it lands."""

    done: int
    total: int
    shard: common_pb2.ShardRef | None = None
    reannounced: bool = False
    message: str = ""


Announce = Callable[[generator_pb2.ShardReady], None]


@dataclass
class _Pending:
    plan: ShardPlan
    pngs: list[Future[bytes] | None]
    missing: int


class JobRunner:
    """GenerationJobs -> shards in the store + ShardReady announcements."""

    def __init__(
        self, store: ObjectStore, engine: Engine | None = None, models: ModelCache | None = None,
        announce: Announce | None = None, max_images: int | None = None,
    ) -> None:
        self.store = store
        self.engine = engine or Engine()
        self.models = models or ModelCache()
        self.announce = announce or (lambda _event: None)
        self.max_images = max_images
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shard-writer")

    @property
    def device(self) -> str:
        return str(self.engine.device)

    def validate(self, job: generator_pb2.GenerationJob) -> None:
        validate_job(job, self.device, self.max_images)

    def job_batch_size(self, job: generator_pb2.GenerationJob) -> int:
        """The padded batch size for a job's images: the generator's, capped at the study's job size.

        A worker gets one job per message, so a batch never holds more than one job's images;
        padding a 32-image job to a batch of 256 would sample 8x the images it keeps. The cap
        is the prompter's job size (`shard_size`, the same for every job of a study), not this
        job's count, so every image of a study is sampled at one batch size and stays
        reproducible bit for bit (the last, shorter chunk is padded to it). Jobs without a
        job size (`synscale generate`, which batches across classes) keep the generator's.
        """
        requested = int(job.generator.batch_size) or self.engine.default_batch_size
        if job.shard_size > 0 and job.job.seed_count <= job.shard_size:
            return min(requested, int(job.shard_size))
        return requested

    def run(self, jobs: Sequence[generator_pb2.GenerationJob]) -> Iterator[Progress]:
        for job in jobs:
            self.validate(job)
            if job.bucket and job.bucket != self.store.bucket:
                log.warning("job asks for bucket %r; this generator writes to %r",
                            job.bucket, self.store.bucket)
        plans = [plan for job in jobs for plan in plan_shards(job)]
        total = sum(p.count for p in plans)
        done = 0
        groups: dict[tuple[BackendSettings, SamplingParams, int], list[ShardPlan]] = {}
        for plan in plans:
            ref = find_existing(self.store, plan)
            if ref is not None:
                done += plan.count
                self.announce(shard_ready(ref, reannounced=True))
                yield Progress(done, total, ref, True, f"{plan.key} already exists")
                continue
            spec = plan.job.generator
            key = (settings_for(spec, self.device), params_for(plan.job), self.job_batch_size(plan.job))
            groups.setdefault(key, []).append(plan)
        for (settings, params, batch_size), group in groups.items():
            backend = self.models.get(settings)
            for progress in self._run_group(backend, params, batch_size, group, done, total):
                done = progress.done
                yield progress

    def _run_group(
        self, backend: Backend, params: SamplingParams, batch_size: int, plans: list[ShardPlan],
        done: int, total: int,
    ) -> Iterator[Progress]:
        pending = [_Pending(p, [None] * p.count, p.count) for p in plans]
        owners = [(k, i) for k, p in enumerate(plans) for i in range(p.count)]
        requests = [ImageRequest(p.prompts[i], p.seeds[i]) for p in plans for i in range(p.count)]
        writes: deque[tuple[ShardPlan, Future[common_pb2.ShardRef]]] = deque()
        try:
            for batch in self.engine.run(backend, params, requests, batch_size=batch_size):
                for offset, future in enumerate(batch.pngs):
                    k, i = owners[batch.start + offset]
                    pending[k].pngs[i] = future
                    pending[k].missing -= 1
                    if pending[k].missing == 0:
                        writes.append((plans[k], self._writer.submit(self._write, pending[k])))
                done += len(batch.images)
                yield Progress(done, total, message=f"batch of {len(batch.images)} (size {batch.batch_size})")
                while writes and writes[0][1].done():
                    yield self._landed(writes.popleft()[1], done, total)
            while writes:
                yield self._landed(writes.popleft()[1], done, total)
        finally:
            for _plan, write in writes:  # never leave a write running behind a failure
                write.exception()

    def _write(self, item: _Pending) -> common_pb2.ShardRef:
        return write_planned(self.store, item.plan, [f.result() for f in item.pngs if f is not None])

    def _landed(self, future: Future[common_pb2.ShardRef], done: int, total: int) -> Progress:
        ref = future.result()
        self.announce(shard_ready(ref, reannounced=False))
        return Progress(done, total, ref, False, f"wrote {ref.key}")

    def close(self) -> None:
        self._writer.shutdown(wait=True)
