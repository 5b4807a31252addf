"""A JSON cache of model outputs (word2sen sentences, captions) in an object store.

Language-model sentences and captions are expensive and must be identical for every
prompt built from them, so they are computed once per (model, class, K) and kept in
the study's object store (MinIO in the distributed runtime: every prompter replica
sees the same entry) or, outside a pipeline, in a FileStore under the cache dir.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from synscale.ids import digest
from synscale.store.base import ObjectStore
from synscale_prompter.wordnet import cache_dir

log = logging.getLogger(__name__)
PREFIX = "cache/prompter"


def default_store() -> ObjectStore:
    from synscale.store.file import FileStore

    return FileStore(cache_dir() / "store", "prompter-cache")


class OutputCache:
    def __init__(self, store: ObjectStore | None = None) -> None:
        self.store = store if store is not None else default_store()

    @staticmethod
    def key(kind: str, parts: tuple[Any, ...]) -> str:
        return f"{PREFIX}/{kind}/{digest(kind, *parts, length=32)}.json"

    def get(self, kind: str, parts: tuple[Any, ...]) -> Any | None:
        key = self.key(kind, parts)
        if not self.store.exists(key):
            return None
        try:
            entry = json.loads(self.store.get(key))
        except (ValueError, KeyError) as exc:  # a torn or foreign object: recompute it
            log.warning("ignoring unreadable cache entry %s: %s", key, exc)
            return None
        return entry.get("value") if entry.get("parts") == json.loads(json.dumps(list(parts))) else None

    def put(self, kind: str, parts: tuple[Any, ...], value: Any) -> str:
        key = self.key(kind, parts)
        payload = json.dumps({"kind": kind, "parts": list(parts), "value": value},
                             sort_keys=True, ensure_ascii=False, indent=1).encode()
        self.store.put_if_changed(key, payload, content_type="application/json")
        return key
