"""Bad jobs fail with errors that name the field: bad input vs a world that is not ready."""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from synscale.errors import InvalidInput, PreconditionFailed
from synscale.v1 import generator_pb2, study_pb2
from synscale_generator.validation import validate_job

Job = Callable[..., generator_pb2.GenerationJob]
Spec = Callable[..., study_pb2.GeneratorSpec]


def check(job: generator_pb2.GenerationJob, cap: int = 100) -> None:
    validate_job(job, "cpu", max_images=cap)


@pytest.mark.parametrize(("mutate", "field"), [
    (lambda j: setattr(j.generator, "backend", "dalle"), "generator.backend"),
    (lambda j: setattr(j.job.cell, "cfg", math.nan), "job.cell.cfg"),
    (lambda j: setattr(j.job.cell, "cfg", math.inf), "job.cell.cfg"),
    (lambda j: setattr(j.job.cell, "cfg", -1.0), "job.cell.cfg"),
    (lambda j: j.generator.cfg_grid.extend([2.0, math.nan]), "generator.cfg_grid[1]"),
    (lambda j: setattr(j.generator, "resolution", 36), "generator.resolution"),
    (lambda j: setattr(j.generator, "resolution", -8), "generator.resolution"),
    (lambda j: setattr(j.generator, "steps", 5000), "generator.steps"),
    (lambda j: setattr(j.generator, "dtype", "float8"), "generator.dtype"),
    (lambda j: setattr(j.job, "seed_count", 7), "job.seed_count"),
    (lambda j: setattr(j.prompts[1], "index", 5), "prompts[1].index"),
    (lambda j: setattr(j.prompts[0], "class_id", "coat"), "prompts[0].class_id"),
    (lambda j: setattr(j.prompts[2], "text", "  "), "prompts[2].text"),
    (lambda j: setattr(j.job, "study_id", ""), "job.study_id"),
    (lambda j: setattr(j.job.cell, "generator", "other"), "job.cell.generator"),
    (lambda j: setattr(j, "shard_size", -1), "shard_size"),
])
def test_malformed_jobs_are_invalid_input_naming_the_field(
    mutate: Callable[[generator_pb2.GenerationJob], None], field: str, job_for: Job,
) -> None:
    job = job_for("bag", n=3)
    check(job)  # valid before the mutation
    mutate(job)
    with pytest.raises(InvalidInput) as err:
        check(job)
    assert err.value.field == field


def test_more_images_than_the_cap_is_invalid(job_for: Job) -> None:
    with pytest.raises(InvalidInput, match=r"exceed the cap of 4") as err:
        check(job_for("bag", n=5), cap=4)
    assert err.value.field == "prompts"


def test_unknown_backend_lists_the_known_ones(job_for: Job, spec_for: Spec) -> None:
    with pytest.raises(InvalidInput, match=r"known: embedded, sd, sdxl, deepfloyd_if, amused, auto"):
        check(job_for(spec=spec_for(backend="imagen")))


def test_model_directory_problems(tmp_path: Path, tiny_dir: Callable[[str], Path], job_for: Job,
                                  spec_for: Spec) -> None:
    def job_at(path: str, backend: str = "sd", **kw: object) -> generator_pb2.GenerationJob:
        return job_for(spec=spec_for(backend=backend, model_path=path, **kw))

    with pytest.raises(InvalidInput, match=r"needs a local model directory"):
        check(job_at(""))
    with pytest.raises(PreconditionFailed, match=r"does not exist"):
        check(job_at(str(tmp_path / "nowhere")))
    with pytest.raises(PreconditionFailed, match=r"no model_index.json"):
        check(job_at(str(tmp_path)))
    broken = tmp_path / "broken"
    shutil.copytree(tiny_dir("sd"), broken)
    check(job_at(str(broken)))
    for weights in (broken / "unet").glob("*.safetensors"):
        weights.unlink()
    shutil.rmtree(broken / "scheduler")
    with pytest.raises(PreconditionFailed, match=r"incomplete; missing scheduler/; unet/: a weights file"):
        check(job_at(str(broken)))
    with pytest.raises(PreconditionFailed, match=r"holds a StableDiffusionPipeline.*use backend 'sd'"):
        check(job_at(str(tiny_dir("sd")), backend="sdxl"))
    with pytest.raises(InvalidInput, match=r"unknown scheduler 'warp'"):
        check(job_at(str(tiny_dir("sd")), scheduler="warp"))
    with pytest.raises(InvalidInput, match=r"generator\.options\.compile"):
        check(job_at(str(tiny_dir("sd")), options={"compile": "maybe"}))


def test_embedded_weights_must_exist(tmp_path: Path, job_for: Job, spec_for: Spec) -> None:
    pytest.importorskip("synscale_generator.embedded.backend")
    job = job_for(spec=spec_for(backend="embedded", model_path=str(tmp_path / "missing.safetensors")))
    with pytest.raises(PreconditionFailed, match=r"embedded weights .* do not exist"):
        check(job)
    with pytest.raises(PreconditionFailed, match=r"no embedded T2I weights at .*train-generator"):
        check(job_for(spec=spec_for(backend="embedded", model_path=str(tmp_path))))
    with pytest.raises(InvalidInput, match=r"generator\.eta: must be within \[0, 1\]"):
        check(job_for(spec=spec_for(backend="embedded", eta=1.5)))  # a typed field, not an option
