"""Checkpoints in the object store, so a killed run resumes on any machine.

A checkpoint holds everything the next step depends on: weights, optimizer and schedule
state, the AMP scaler, the RNG state, and the data position (epoch, batches consumed in
it). With the seeded data order (stream.py) that makes a resumed run take exactly the
steps an uninterrupted one would. It is written through a temporary file and uploaded
in one put, so a reader sees either the previous or the new checkpoint.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import torch

from synscale.store.base import ObjectStore

log = logging.getLogger(__name__)


def save(store: ObjectStore, key: str, state: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory(prefix="synscale-ckpt-") as tmp:
        path = Path(tmp) / "checkpoint.pt"
        torch.save(state, path)
        store.put_file(key, path, metadata={"step": str(state.get("step", 0))})


def load(store: ObjectStore, key: str, fingerprint: str) -> dict[str, Any] | None:
    """The checkpoint at `key` if it belongs to this job (same fingerprint), else None."""
    if not store.exists(key):
        return None
    with tempfile.TemporaryDirectory(prefix="synscale-ckpt-") as tmp:
        path = Path(tmp) / "checkpoint.pt"
        store.get_file(key, path)
        state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
    if state.get("fingerprint") != fingerprint:
        log.warning("checkpoint %s belongs to a different job; starting from scratch", key)
        return None
    return state
