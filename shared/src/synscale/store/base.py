"""The object-store contract both runtimes implement.

A store is one bucket. Writes are all-or-nothing (a reader never sees half an object)
and every object carries the sha256 of its bytes, which is how idempotent writers tell
"already done" from "must redo".
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from synscale.errors import SynscaleError, Unavailable
from synscale.ids import validate_key

CHUNK = 1024 * 1024


class StoreError(SynscaleError):
    """Any failure of the object store."""


class ObjectNotFound(StoreError, KeyError):
    """The key does not exist."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else "object not found"


class StoreAuthError(StoreError):
    """The store rejected our credentials."""


class StoreUnavailable(StoreError, Unavailable):
    """The store could not be reached."""


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    sha256: str = ""
    metadata: dict[str, str] = field(default_factory=dict)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


class ObjectStore(ABC):
    """Bucket-scoped object storage used for images, shards, scores, checkpoints, reports."""

    bucket: str

    @abstractmethod
    def put(
        self, key: str, data: bytes, *, content_type: str = "application/octet-stream",
        metadata: dict[str, str] | None = None,
    ) -> ObjectInfo:
        """Write `data` atomically under `key` and record its sha256."""

    @abstractmethod
    def put_file(
        self, key: str, path: Path | str, *, content_type: str = "application/octet-stream",
        metadata: dict[str, str] | None = None,
    ) -> ObjectInfo:
        """Upload a local file (multipart where large) atomically."""

    @abstractmethod
    def get(self, key: str) -> bytes:
        """Return the whole object; raises ObjectNotFound."""

    @abstractmethod
    def get_file(self, key: str, path: Path | str) -> ObjectInfo:
        """Download to a local file (written beside, then renamed into place)."""

    @abstractmethod
    def stat(self, key: str) -> ObjectInfo | None:
        """Size and sha256 of an object, or None when it does not exist."""

    @abstractmethod
    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Objects whose key starts with `prefix`, in lexicographic key order."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove an object; deleting a missing key is not an error."""

    def keys(self, prefix: str = "") -> Iterator[str]:
        """Keys that start with `prefix`, in lexicographic order, without their metadata.

        What bookkeeping needs (coverage is read from key names): a backend that must open
        a sidecar or ask the server per object for `list()` answers this from the listing
        alone, so a rebuild over a million shards is one pass of names (docs/scaling.md).
        """
        for info in self.list(prefix):
            yield info.key

    def children(self, prefix: str) -> tuple[str, ...]:
        """Sorted distinct names one level below `prefix` (which ends with "/").

        What a reconciler needs to find every study without listing every image: S3
        answers it with a delimiter listing; this default derives it from list().
        """
        names = {info.key[len(prefix):].split("/", 1)[0] for info in self.list(prefix)}
        return tuple(sorted(n for n in names if n))

    def ping(self) -> None:  # noqa: B027 - optional hook
        """Raise StoreUnavailable unless the store answers now (a local folder always does)."""

    def exists(self, key: str) -> bool:
        return self.stat(key) is not None

    def put_if_changed(
        self, key: str, data: bytes, *, content_type: str = "application/octet-stream",
        metadata: dict[str, str] | None = None,
    ) -> tuple[ObjectInfo, bool]:
        """Idempotent write: skip when the same bytes are already there. Returns (info, wrote)."""
        digest = hashlib.sha256(data).hexdigest()
        current = self.stat(key)
        if current is not None and current.sha256 == digest:
            return current, False
        return self.put(key, data, content_type=content_type, metadata=metadata), True

    @staticmethod
    def _check_key(key: str) -> str:
        try:
            return validate_key(key)
        except ValueError as exc:
            raise StoreError(str(exc)) from exc
