"""Saving and loading the embedded model's weights, with a checksum next to them.

One `.safetensors` file holds the EMA weights (fp16, to keep the committed file small)
and, in its metadata, the model/schedule configs and how it was trained, so a weights
file is self-describing. A `<file>.sha256` beside it lets loaders reject truncated or
altered files before building a model from them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from synscale.errors import PreconditionFailed

from .model import ModelConfig, ScheduleConfig, build_unet

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
WEIGHTS_NAME = "embedded_t2i.safetensors"
DEFAULT_WEIGHTS = WEIGHTS_DIR / WEIGHTS_NAME


@dataclass(frozen=True)
class LoadedModel:
    unet: torch.nn.Module
    model_config: ModelConfig
    schedule: ScheduleConfig
    info: dict[str, Any]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def checksum_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def save_weights(
    unet: torch.nn.Module,
    path: Path,
    model_config: ModelConfig,
    schedule: ScheduleConfig,
    info: dict[str, Any],
    dtype: torch.dtype = torch.float16,
) -> str:
    """Write the weights and their `.sha256` (sha256sum format); returns the digest."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu", dtype).contiguous() for k, v in unet.state_dict().items()}
    metadata = {
        "format": "synscale-embedded-t2i/1",
        "model_config": json.dumps(model_config.to_dict(), sort_keys=True),
        "schedule": json.dumps(schedule.to_dict(), sort_keys=True),
        "info": json.dumps(info, sort_keys=True),
    }
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata=metadata)
    tmp.chmod(0o644)  # safetensors creates 0600 files; weights are meant to be shared
    tmp.replace(path)
    digest = sha256_of(path)
    checksum_path(path).write_text(f"{digest}  {path.name}\n")
    return digest


def verify_checksum(path: Path) -> None:
    """Raise PreconditionFailed if `<path>.sha256` exists and does not match the file."""
    sums = checksum_path(path)
    if not sums.exists():
        return
    expected = sums.read_text().split()[0] if sums.read_text().strip() else ""
    actual = sha256_of(path)
    if expected != actual:
        raise PreconditionFailed(
            f"embedded T2I weights {path} do not match {sums.name} "
            f"(sha256 {actual[:12]}…, expected {expected[:12]}…): incomplete or altered file; "
            "retrain with `synscale embedded train-generator` or restore the file"
        )


def load_weights(path: str | Path | None = None, device: str = "cpu") -> LoadedModel:
    """Build the UNet described by a weights file and load it (fp32) onto `device`."""
    weights = Path(path) if path is not None else DEFAULT_WEIGHTS
    if weights.is_dir():
        weights = weights / WEIGHTS_NAME
    if not weights.is_file():
        raise PreconditionFailed(
            f"embedded T2I weights not found at {weights}; "
            "train them with `synscale embedded train-generator`"
        )
    verify_checksum(weights)
    try:
        with safe_open(str(weights), framework="pt") as fh:
            metadata = fh.metadata() or {}
        tensors = load_file(str(weights))
        model_config = ModelConfig.from_dict(json.loads(metadata["model_config"]))
        schedule = ScheduleConfig.from_dict(json.loads(metadata["schedule"]))
        info = json.loads(metadata.get("info", "{}"))
    except (SafetensorError, KeyError, ValueError, OSError) as exc:
        raise PreconditionFailed(
            f"embedded T2I weights {weights} are unreadable or incomplete: {exc}"
        ) from exc
    unet = build_unet(model_config)
    missing, unexpected = unet.load_state_dict(
        {k: v.to(torch.float32) for k, v in tensors.items()}, strict=False
    )
    if missing or unexpected:
        raise PreconditionFailed(
            f"embedded T2I weights {weights} do not fit their own config "
            f"(missing {len(missing)} tensors, e.g. {missing[:2]}; unexpected {unexpected[:2]})"
        )
    unet.to(device).eval().requires_grad_(False)
    return LoadedModel(unet=unet, model_config=model_config, schedule=schedule, info=info)
