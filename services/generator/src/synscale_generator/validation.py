"""Checks on a GenerationJob before any model is loaded or any image made.

Every problem names the field: malformed requests raise InvalidInput (INVALID_ARGUMENT
over gRPC), a world that is not ready (weights missing or incomplete) raises
PreconditionFailed (FAILED_PRECONDITION). The worker turns both into a dead letter with
this reason and moves on, because retrying cannot fix either.
"""

from __future__ import annotations

import math

from synscale.errors import InvalidInput
from synscale.settings import Env
from synscale.v1 import generator_pb2, study_pb2

from .backends import BackendSettings, SamplingParams, entry_for
from .backends.base import DTYPE_NAMES

DEFAULT_MAX_IMAGES = 10_000
MAX_RESOLUTION = 2048
MAX_STEPS = 1000
MAX_PROMPT_CHARS = 2000


def max_images_per_job() -> int:
    """The cap on images in one job (SYNSCALE_GENERATOR_MAX_IMAGES), bounding a job's memory and time."""
    return Env().integer("SYNSCALE_GENERATOR_MAX_IMAGES", DEFAULT_MAX_IMAGES, minimum=1)


def check_cfg(value: float, field: str = "job.cell.cfg") -> float:
    if not math.isfinite(value):
        raise InvalidInput(field, f"CFG must be finite, got {value}")
    if value < 0:
        raise InvalidInput(field, f"CFG must be >= 0 (<= 1 means unguided), got {value}")
    return float(value)


def check_spec(spec: study_pb2.GeneratorSpec) -> None:
    """Field checks on a GeneratorSpec that need no files."""
    entry_for(spec.backend)  # unknown backend -> InvalidInput naming the known ones
    if not spec.name.strip():
        raise InvalidInput("generator.name", "must not be empty")
    if spec.resolution < 0 or spec.resolution % 8 != 0 or spec.resolution > MAX_RESOLUTION:
        raise InvalidInput("generator.resolution",
                           f"must be a positive multiple of 8 up to {MAX_RESOLUTION} (0: model default), "
                           f"got {spec.resolution}")
    if not 0 <= spec.steps <= MAX_STEPS:
        raise InvalidInput("generator.steps",
                           f"must be in 1..{MAX_STEPS} (0: model default), got {spec.steps}")
    if spec.dtype and spec.dtype not in DTYPE_NAMES:
        raise InvalidInput("generator.dtype",
                           f"unknown dtype {spec.dtype!r}; allowed: {', '.join(DTYPE_NAMES)}")
    if spec.batch_size < 0:
        raise InvalidInput("generator.batch_size", f"must be >= 0 (0: automatic), got {spec.batch_size}")
    for i, value in enumerate(spec.cfg_grid):
        check_cfg(value, f"generator.cfg_grid[{i}]")


def settings_for(spec: study_pb2.GeneratorSpec, device: str) -> BackendSettings:
    return BackendSettings.create(
        spec.backend, spec.model_path, device, spec.dtype, spec.scheduler, dict(spec.options),
        spec.eta if spec.HasField("eta") else None,
    )


def params_for(job: generator_pb2.GenerationJob) -> SamplingParams:
    spec = job.generator
    steps = spec.steps or entry_for(spec.backend).default_steps
    return SamplingParams(float(job.job.cell.cfg), int(steps), spec.negative_prompt, int(spec.resolution))


def validate_job(job: generator_pb2.GenerationJob, device: str, max_images: int | None = None) -> None:
    """Raise InvalidInput / PreconditionFailed naming the first problem found."""
    ident = job.job
    if not job.HasField("job"):
        raise InvalidInput("job", "the job identity is missing")
    if not job.HasField("generator"):
        raise InvalidInput("generator", "the generator spec is missing")
    for field, value in (("job.study_id", ident.study_id), ("job.class_id", ident.class_id),
                         ("job.cell.strategy", ident.cell.strategy)):
        if not value.strip():
            raise InvalidInput(field, "must not be empty")
    if ident.cell.generator != job.generator.name:
        raise InvalidInput("job.cell.generator", f"is {ident.cell.generator!r} but the generator spec is "
                           f"named {job.generator.name!r}")
    check_cfg(ident.cell.cfg)
    check_spec(job.generator)
    _check_prompts(job, max_images if max_images is not None else max_images_per_job())
    if job.shard_size < 0:
        raise InvalidInput("shard_size", f"must be >= 0 (0: one shard per job), got {job.shard_size}")
    entry_for(job.generator.backend).check(settings_for(job.generator, device))


def _check_prompts(job: generator_pb2.GenerationJob, cap: int) -> None:
    ident = job.job
    n = len(job.prompts)
    if n == 0:
        raise InvalidInput("prompts", "the job has no prompts")
    if n > cap:
        raise InvalidInput("prompts", f"{n} images in one job exceed the cap of {cap} "
                           "(split the job, or raise SYNSCALE_GENERATOR_MAX_IMAGES)")
    if ident.seed_start < 0:
        raise InvalidInput("job.seed_start", f"must be >= 0, got {ident.seed_start}")
    if ident.seed_count != n:
        raise InvalidInput("job.seed_count", f"is {ident.seed_count} but the job has {n} prompts")
    for i, prompt in enumerate(job.prompts):
        where = f"prompts[{i}]"
        if prompt.index != ident.seed_start + i:
            raise InvalidInput(f"{where}.index", f"is {prompt.index}; prompts must cover indices "
                               f"{ident.seed_start}..{ident.seed_start + n - 1} in order")
        if prompt.class_id != ident.class_id:
            raise InvalidInput(f"{where}.class_id",
                               f"is {prompt.class_id!r}, the job is for {ident.class_id!r}")
        if prompt.strategy and prompt.strategy != ident.cell.strategy:
            raise InvalidInput(f"{where}.strategy", f"is {prompt.strategy!r}, the job's cell uses "
                               f"{ident.cell.strategy!r}")
        if not prompt.text.strip():
            raise InvalidInput(f"{where}.text", "must not be empty")
        if len(prompt.text) > MAX_PROMPT_CHARS:
            raise InvalidInput(f"{where}.text",
                               f"is {len(prompt.text)} characters; the limit is {MAX_PROMPT_CHARS}")
