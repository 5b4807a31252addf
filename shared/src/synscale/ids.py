"""Deterministic identities and object keys.

Every job, shard, image and run key is a pure function of what it is made of (study,
generator, CFG, strategy, class, seed range); the keys themselves are laid out (and
parsed) in `synscale.layout`, from the components made safe here. A redelivered job therefore rewrites the
same object, which is what makes at-least-once delivery safe. Keys use a safe alphabet
whatever class names or prompts contain: user text never reaches a path unescaped.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Mapping
from typing import Any

_SAFE = re.compile(r"[^a-z0-9._-]+")
_MAX_COMPONENT = 64
_KEY_RE = re.compile(r"^[A-Za-z0-9._=-]+(/[A-Za-z0-9._=-]+)*$")
_MAX_KEY = 900  # S3 allows 1024 bytes; leave room for bucket-side prefixes


def digest(*parts: Any, length: int = 16) -> str:
    """Stable hex digest of JSON-serialisable parts (order matters, types preserved)."""
    payload = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:length]


def safe_component(text: str, max_len: int = _MAX_COMPONENT) -> str:
    """Turn arbitrary text into one safe key segment.

    Text that is already safe is kept verbatim; anything else is slugged and suffixed
    with a short hash of the original so that two hostile names never collide.
    """
    if not isinstance(text, str):
        raise TypeError(f"key component must be str, got {type(text).__name__}")
    if text and len(text) <= max_len and _is_plain(text):
        return text
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = _SAFE.sub("-", ascii_text.lower())
    slug = re.sub(r"\.{2,}", ".", slug).strip(".-_")
    suffix = digest(text, length=10)
    slug = slug[: max_len - len(suffix) - 1].strip(".-_")
    return f"{slug}-{suffix}" if slug else f"x-{suffix}"


def _is_plain(text: str) -> bool:
    return (
        _SAFE.search(text) is None
        and ".." not in text
        and not text.startswith((".", "-", "_"))
        and not text.endswith((".", "-"))
    )


def validate_key(key: str) -> str:
    """Reject keys that could escape a prefix or confuse a filesystem store."""
    if not isinstance(key, str) or not key:
        raise ValueError("object key must be a non-empty string")
    if len(key) > _MAX_KEY:
        raise ValueError(f"object key is {len(key)} characters; the limit is {_MAX_KEY}")
    if not _KEY_RE.match(key) or any(seg in {".", ".."} for seg in key.split("/")):
        raise ValueError(f"object key {key[:80]!r} has unsafe characters or segments")
    return key


def format_cfg(cfg: float) -> str:
    """CFG as a key segment: 7.5 -> 'cfg7.5', 2 -> 'cfg2'."""
    value = float(cfg)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"cfg must be finite, got {cfg!r}")
    text = f"{value:g}".replace("-", "m").replace("+", "")
    return f"cfg{text}"


def cell_path(generator: str, cfg: float, strategy: str) -> str:
    """The key prefix of one study cell (generator x CFG x strategy)."""
    return f"{safe_component(generator)}/{format_cfg(cfg)}/{safe_component(strategy)}"


def cell_name(generator: str, cfg: float, strategy: str) -> str:
    """Human-readable cell label used in reports and tables."""
    return f"{generator}|cfg={float(cfg):g}|{strategy}"


def image_seed(study_id: str, generator: str, strategy: str, class_id: str, index: int) -> int:
    """Seed of the i-th image of a (generator, strategy, class) sequence.

    CFG is deliberately left out: every guidance scale starts from the same noise, so
    differences across the CFG grid come from guidance alone (paired comparison).
    """
    return int(digest(study_id, generator, strategy, class_id, int(index), length=15), 16)


def sample_key(class_id: str, index: int) -> str:
    """WebDataset sample key of one image (no dots: webdataset splits extensions on them)."""
    return f"{safe_component(class_id).replace('.', '_')}_{int(index):09d}"


def job_id(fields: Mapping[str, Any]) -> str:
    """Deterministic id of any job described by a flat mapping."""
    return digest(dict(fields), length=20)


def study_id_from_spec(name: str, spec: Mapping[str, Any]) -> str:
    """A study id readable by people and unique to the spec's content."""
    return f"{safe_component(name, 40)}-{digest(dict(spec), length=8)}"
