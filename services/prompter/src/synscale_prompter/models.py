"""Local transformers model directories: identity for caching, and seeded generation.

Only functions here that run a model import torch, and they import it when called:
the prompter's base install carries no torch.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from synscale.errors import InvalidInput
from synscale.ids import digest

_IDENTITY_FILES = ("config.json", "generation_config.json", "tokenizer.json",
                   "tokenizer_config.json", "preprocessor_config.json")


def check_model_dir(path: str, field: str) -> Path:
    """The directory of a local model; bad paths are the caller's input error."""
    if not path:
        raise InvalidInput(field, "needs a local model directory (no model hub offline)")
    p = Path(path).expanduser()
    if not (p / "config.json").is_file():
        raise InvalidInput(field, f"{path} is not a transformers model directory (no config.json)")
    return p


def model_fingerprint(path: Path) -> str:
    """Content identity of a model directory without hashing gigabytes of weights.

    Config and tokenizer files are hashed; weight files count by name and size. Two
    copies of one model at different paths get the same fingerprint (cache hits across
    machines); a fine-tuned model with the same config differs in size or config.
    """
    texts = {name: (path / name).read_text(errors="replace")
             for name in _IDENTITY_FILES if (path / name).is_file()}
    sizes = sorted((str(f.relative_to(path)), f.stat().st_size)
                   for f in path.rglob("*") if f.is_file() and not f.name.startswith("."))
    return digest(texts, sizes, length=24)


def seed_of(*parts: Any) -> int:
    """A torch seed derived from what is being generated (not from global state)."""
    return int(digest("torch-seed", *parts, length=15), 16)


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run with torch's RNG seeded, leaving the caller's RNG state untouched."""
    import torch

    with torch.random.fork_rng(devices=list(range(torch.cuda.device_count()))):
        torch.manual_seed(seed)
        yield


def pick_device() -> str:
    """synscale.settings.pick_device: SYNSCALE_DEVICE, else cuda when available."""
    import torch

    from synscale import settings

    return settings.pick_device(torch.cuda.is_available)
