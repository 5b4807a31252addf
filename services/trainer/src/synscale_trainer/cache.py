"""A local cache of shards, keyed by content (sha256), filled by a background prefetcher.

Every shard is downloaded once per machine, whatever run or epoch asks for it again:
a scaling study trains many runs over nested subsets of the same shards. Downloads happen
in threads of the training process, in the order the epoch will read them; data-loader
worker processes only read finished files from the cache, so they never hold a store
client (S3 connection pools do not survive fork safely).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from synscale.errors import PreconditionFailed, Unavailable
from synscale.store.base import ObjectStore

log = logging.getLogger(__name__)


class ShardCache:
    """Files `<root>/<sha[:2]>/<sha>.tar`; a `.err` file beside a path records a failed download."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str) -> Path:
        if len(sha256) < 16 or not all(c in "0123456789abcdef" for c in sha256):
            raise ValueError(f"cache id must be a hex digest, got {sha256!r}")
        return self.root / sha256[:2] / f"{sha256}.tar"

    def has(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def fetch(self, store: ObjectStore, key: str, sha256: str) -> Path:
        """Download `key` unless its bytes are cached; verifies the sha256 when it is real."""
        target = self.path(sha256)
        if target.is_file():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}")
        try:
            store.get_file(key, tmp)
            if len(sha256) == 64:
                actual = _sha256(tmp)
                if actual != sha256:
                    raise PreconditionFailed(
                        f"shard {key} has sha256 {actual[:12]}…, expected {sha256[:12]}…"
                    )
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        self.error_path(sha256).unlink(missing_ok=True)
        return target

    def error_path(self, sha256: str) -> Path:
        return self.path(sha256).with_suffix(".err")

    def wait(self, sha256: str, timeout_s: float = 600.0, poll_s: float = 0.02) -> Path:
        """Block until the prefetcher has the file (used by loader workers)."""
        target = self.path(sha256)
        err = self.error_path(sha256)
        deadline = time.monotonic() + timeout_s
        while not target.is_file():
            if err.is_file():
                raise Unavailable(f"shard download failed: {err.read_text()[:500]}")
            if time.monotonic() > deadline:
                raise Unavailable(f"shard {sha256[:12]}… did not arrive in the cache within {timeout_s:.0f}s")
            time.sleep(poll_s)
        return target


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class Prefetcher:
    """Downloads shards into the cache with a few threads, in the order given."""

    def __init__(self, store: ObjectStore, cache: ShardCache, threads: int = 4) -> None:
        self.store = store
        self.cache = cache
        self._pool = ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="shard-prefetch")
        self._pending: dict[str, Future[Path]] = {}
        self._lock = threading.Lock()

    def submit(self, items: Sequence[tuple[str, str]]) -> None:
        """Queue (key, sha256) downloads; already cached or queued items are skipped."""
        with self._lock:
            for key, sha in items:
                if sha in self._pending or self.cache.has(sha):
                    continue
                self.cache.error_path(sha).unlink(missing_ok=True)
                self._pending[sha] = self._pool.submit(self._fetch, key, sha)

    def _fetch(self, key: str, sha: str) -> Path:
        try:
            return self.cache.fetch(self.store, key, sha)
        except Exception as exc:
            log.error("prefetch of %s failed: %s", key, exc)
            err = self.cache.error_path(sha)
            err.parent.mkdir(parents=True, exist_ok=True)
            err.write_text(f"{key}: {exc}")
            with self._lock:
                self._pending.pop(sha, None)
            raise

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
