"""Local-filesystem object store for the embedded runtime and for caches."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from synscale.store.base import ObjectInfo, ObjectNotFound, ObjectStore, StoreError, sha256_file

_META_DIR = ".synscale-meta"


class FileStore(ObjectStore):
    """Objects are files under root/bucket; metadata sits in a sidecar tree.

    Atomicity comes from writing a temporary file in the same directory and renaming it
    over the target. The sidecar is a cache of the sha256: when it does not match the
    object's size and mtime (a crash between the two renames), the object is rehashed.
    """

    def __init__(self, root: Path | str, bucket: str = "synscale") -> None:
        self.root = Path(root)
        self.bucket = bucket
        self.base = self.root / bucket
        self.base.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.base / self._check_key(key)

    def _meta_path(self, key: str) -> Path:
        return self.base / _META_DIR / f"{key}.json"

    def _write_atomic(self, target: Path, writer) -> None:  # type: ignore[no-untyped-def]
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                writer(fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _record(self, key: str, sha: str, content_type: str, metadata: dict[str, str] | None) -> ObjectInfo:
        path = self._path(key)
        st = path.stat()
        meta = {
            "sha256": sha,
            "size": st.st_size,
            "mtime_ns": st.st_mtime_ns,
            "content_type": content_type,
            "metadata": dict(metadata or {}),
        }
        blob = json.dumps(meta).encode()
        self._write_atomic(self._meta_path(key), lambda fh: fh.write(blob))
        return ObjectInfo(key=key, size=st.st_size, sha256=sha, metadata=dict(metadata or {}))

    def put(self, key, data, *, content_type="application/octet-stream", metadata=None):  # type: ignore[no-untyped-def]
        if not isinstance(data, bytes | bytearray | memoryview):
            raise StoreError(f"put({key!r}) needs bytes, got {type(data).__name__}")
        self._write_atomic(self._path(key), lambda fh: fh.write(data))
        return self._record(key, hashlib.sha256(data).hexdigest(), content_type, metadata)

    def put_file(self, key, path, *, content_type="application/octet-stream", metadata=None):  # type: ignore[no-untyped-def]
        src = Path(path)
        if not src.is_file():
            raise StoreError(f"put_file({key!r}): {src} is not a file")
        with open(src, "rb") as fin:
            self._write_atomic(self._path(key), lambda fh: shutil.copyfileobj(fin, fh, 1 << 20))
        return self._record(key, sha256_file(self._path(key)), content_type, metadata)

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise ObjectNotFound(f"{self.bucket}/{key} does not exist") from None

    def get_file(self, key: str, path: Path | str) -> ObjectInfo:
        src = self._path(key)
        if not src.is_file():
            raise ObjectNotFound(f"{self.bucket}/{key} does not exist")
        with open(src, "rb") as fin:
            self._write_atomic(Path(path), lambda fh: shutil.copyfileobj(fin, fh, 1 << 20))
        info = self.stat(key)
        assert info is not None
        return info

    def stat(self, key: str) -> ObjectInfo | None:
        path = self._path(key)
        try:
            st = path.stat()
        except FileNotFoundError:
            return None
        meta: dict = {}
        with contextlib.suppress(FileNotFoundError, ValueError):
            meta = json.loads(self._meta_path(key).read_text())
        if meta.get("size") == st.st_size and meta.get("mtime_ns") == st.st_mtime_ns:
            sha = str(meta["sha256"])
        else:
            sha = sha256_file(path)
        return ObjectInfo(key=key, size=st.st_size, sha256=sha, metadata=meta.get("metadata", {}))

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        for key in self.keys(prefix):
            info = self.stat(key)
            if info is not None:
                yield info

    def keys(self, prefix: str = "") -> Iterator[str]:
        """Walks only the folder the prefix names (not the whole bucket), in key order.

        Keys are paths, so every key under `a/b/c` lives below the folder `a/b`; the
        walk starts there and filters the last component by the prefix's tail.
        """
        folder, _, _ = prefix.rpartition("/")
        top = self.base / folder if folder else self.base
        if folder and (folder == _META_DIR or folder.startswith(_META_DIR + "/")):
            return
        found: list[str] = []
        for dirpath, dirnames, filenames in os.walk(top):
            rel_dir = Path(dirpath).relative_to(self.base).as_posix()
            if rel_dir == ".":
                dirnames[:] = [d for d in dirnames if d != _META_DIR]
            base = "" if rel_dir == "." else f"{rel_dir}/"
            if not (base.startswith(prefix) or prefix.startswith(base)):
                dirnames[:] = []
                continue
            dirnames[:] = [d for d in dirnames if (base + d + "/").startswith(prefix)
                           or prefix.startswith(base + d + "/")]
            found.extend(key for name in filenames if not name.startswith(".tmp-")
                         and (key := base + name).startswith(prefix))
        found.sort()
        yield from found

    def children(self, prefix: str) -> tuple[str, ...]:
        folder = self.base / prefix.rstrip("/") if prefix.strip("/") else self.base
        if not folder.is_dir():
            return ()
        return tuple(sorted(p.name for p in folder.iterdir()
                      if p.name != _META_DIR and not p.name.startswith(".tmp-")))

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)
        self._meta_path(key).unlink(missing_ok=True)
