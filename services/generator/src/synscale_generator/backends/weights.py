"""Checks that a local diffusers pipeline directory is complete before anything loads it.

A half-copied model directory otherwise fails deep inside `from_pretrained` with an
error that names neither the directory nor the missing file. These checks run when a
job is validated, so a worker dead-letters the job with a reason a person can act on
(FAILED_PRECONDITION over gRPC) instead of crashing on load.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from synscale.errors import InvalidInput, PreconditionFailed

FIELD = "generator.model_path"
# Components we never load (safety checkers, watermarkers), so they need not be present.
SKIPPED_COMPONENTS = frozenset({"safety_checker", "feature_extractor", "watermarker", "image_encoder"})
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt")


def require_path(path: str, backend: str, field: str = FIELD) -> Path:
    """The path must be given (bad input) and exist (precondition)."""
    if not path.strip():
        raise InvalidInput(field, f"backend {backend!r} needs a local model directory")
    p = Path(path).expanduser()
    if not p.exists():
        raise PreconditionFailed(f"{field}: {path} does not exist")
    return p


def _weights_present(folder: Path) -> str | None:
    """None when the folder has loadable weights, else what is missing."""
    files = [f for f in folder.iterdir() if f.is_file()]
    for index in (f for f in files if f.name.endswith(".index.json")):
        try:
            shards = set(json.loads(index.read_text()).get("weight_map", {}).values())
        except (OSError, ValueError) as exc:
            return f"{index.name} is unreadable ({exc})"
        missing = sorted(s for s in shards if not (folder / s).is_file())
        if missing:
            return f"shards {', '.join(missing)} listed in {index.name}"
        return None
    weights = [f for f in files if f.name.endswith(WEIGHT_SUFFIXES)]
    if not weights:
        return "a weights file (*.safetensors or *.bin)"
    empty = [f.name for f in weights if f.stat().st_size == 0]
    if empty:
        return f"non-empty weights ({', '.join(empty)} is empty)"
    return None


def _component_problem(root: Path, name: str, class_name: str) -> str | None:
    folder = root / name
    if not folder.is_dir():
        return f"{name}/"
    if "Scheduler" in class_name:
        return None if (folder / "scheduler_config.json").is_file() else f"{name}/scheduler_config.json"
    if "Tokenizer" in class_name:
        return None if any(folder.iterdir()) else f"{name}/ (tokenizer files)"
    if "Processor" in class_name or "FeatureExtractor" in class_name:
        return None
    if not (folder / "config.json").is_file():
        return f"{name}/config.json"
    missing = _weights_present(folder)
    return f"{name}/: {missing}" if missing else None


def read_model_index(path: str, backend: str, field: str = FIELD) -> dict[str, Any]:
    """model_index.json of a pipeline directory, after checking every component is there."""
    root = require_path(path, backend, field)
    if not root.is_dir():
        raise PreconditionFailed(f"{field}: {path} is not a directory (backend {backend!r} loads a "
                                 "diffusers pipeline folder)")
    index_file = root / "model_index.json"
    if not index_file.is_file():
        raise PreconditionFailed(f"{field}: {path} has no model_index.json; it is not a diffusers "
                                 "pipeline directory (save one with pipeline.save_pretrained)")
    try:
        index = json.loads(index_file.read_text())
    except (OSError, ValueError) as exc:
        raise PreconditionFailed(f"{field}: {index_file} is unreadable: {exc}") from exc
    if not isinstance(index, dict) or "_class_name" not in index:
        raise PreconditionFailed(f"{field}: {index_file} has no _class_name")
    problems = []
    for name, value in sorted(index.items()):
        if name.startswith("_") or name in SKIPPED_COMPONENTS:
            continue
        if not (isinstance(value, list) and len(value) == 2) or value[1] is None:
            continue
        problem = _component_problem(root, name, str(value[1]))
        if problem:
            problems.append(problem)
    if problems:
        raise PreconditionFailed(f"{field}: {path} is incomplete; missing {'; '.join(problems)}")
    return index


def check_pipeline_class(index: dict[str, Any], accepted: tuple[str, ...], backend: str, path: str) -> None:
    """A family backend refuses a directory of another family, naming the right backend."""
    found = str(index.get("_class_name", ""))
    if accepted and found not in accepted:
        hint = {
            "StableDiffusionPipeline": "sd", "StableDiffusionXLPipeline": "sdxl",
            "IFPipeline": "deepfloyd_if", "AmusedPipeline": "amused",
        }.get(found, "auto")
        raise PreconditionFailed(
            f"{FIELD}: {path} holds a {found}, which backend {backend!r} does not load "
            f"(expected {' or '.join(accepted)}); use backend {hint!r}"
        )
