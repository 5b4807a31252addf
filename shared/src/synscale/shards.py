"""WebDataset-format tar shards: one PNG and one JSON per sample.

Shards are written byte-for-byte deterministically (fixed mtimes, owners and order) so a
redelivered job produces an identical object and the same sha256, which is how the
generator recognises work that is already done.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

MAX_MEMBER_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Sample:
    key: str
    png: bytes
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class ShardProblem:
    """A member that could not be read; reported and skipped, never fatal."""

    key: str
    reason: str


def encode_png(image: Image.Image | Any) -> bytes:
    """PNG bytes of a PIL image or a HxW / HxWxC uint8 array (deterministic: no timestamps)."""
    if not isinstance(image, Image.Image):
        image = Image.fromarray(image)
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()


def _add(tar: tarfile.TarFile, name: str, payload: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    info.mtime = 0
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    tar.addfile(info, io.BytesIO(payload))


def write_shard(samples: Iterable[Sample]) -> bytes:
    """Tar bytes of the samples, in the order given."""
    buf = io.BytesIO()
    seen: set[str] = set()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for s in samples:
            if "." in s.key or "/" in s.key or not s.key:
                raise ValueError(f"sample key {s.key!r} must be non-empty without '.' or '/'")
            if s.key in seen:
                raise ValueError(f"duplicate sample key {s.key!r} in one shard")
            seen.add(s.key)
            _add(tar, f"{s.key}.png", s.png)
            _add(tar, f"{s.key}.json", json.dumps(s.meta, sort_keys=True).encode())
    return buf.getvalue()


def iter_shard(data: bytes, problems: list[ShardProblem] | None = None) -> Iterator[Sample]:
    """Samples of a shard; unreadable members are appended to `problems` and skipped.

    A truncated or corrupt tar yields the samples before the damage.
    """
    pending: dict[str, dict[str, bytes]] = {}
    order: list[str] = []
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                base, _, ext = member.name.rpartition(".")
                if not base or "/" in base:
                    _note(problems, member.name, "member name is not <key>.<ext>")
                    continue
                if member.size > MAX_MEMBER_BYTES:
                    _note(problems, base, f"member {member.name} is {member.size} bytes")
                    continue
                fh = tar.extractfile(member)
                if fh is None:
                    continue
                if base not in pending:
                    pending[base] = {}
                    order.append(base)
                pending[base][ext] = fh.read()
    except (tarfile.TarError, EOFError, OSError) as exc:
        _note(problems, "<shard>", f"corrupt tar: {exc}")
    for key in order:
        parts = pending[key]
        if "png" not in parts:
            _note(problems, key, f"no png member (found {sorted(parts)})")
            continue
        try:
            meta = json.loads(parts["json"]) if "json" in parts else {}
        except ValueError as exc:
            _note(problems, key, f"bad json: {exc}")
            continue
        yield Sample(key, parts["png"], meta)


def _note(problems: list[ShardProblem] | None, key: str, reason: str) -> None:
    if problems is not None:
        problems.append(ShardProblem(key, reason))


def decode_png(png: bytes, *, mode: str | None = None, size: tuple[int, int] | None = None) -> Image.Image:
    """Decode and check an image; raises ValueError naming what is wrong."""
    try:
        image = Image.open(io.BytesIO(png))
        image.load()
    except Exception as exc:
        raise ValueError(f"not a decodable image: {exc}") from exc
    if mode is not None and image.mode != mode:
        raise ValueError(f"image mode is {image.mode}, expected {mode}")
    if size is not None and image.size != tuple(size):
        raise ValueError(f"image size is {image.size}, expected {tuple(size)}")
    return image
