"""Byte-deterministic .npz files.

`numpy.savez` stamps the current time into each zip entry, so the same arrays written
twice differ — which would defeat idempotent writes (`put_if_changed`) and the "same
bytes on re-aggregation" guarantee. This writer fixes entry order, timestamps and
compression; `numpy.load` reads the result like any .npz.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Mapping
from typing import Any

import numpy as np

_EPOCH = (1980, 1, 1, 0, 0, 0)
META = "__meta__"


def dumps(arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any] | None = None) -> bytes:
    """Arrays (and an optional JSON-able meta mapping) as deterministic .npz bytes."""
    items = dict(arrays)
    if meta is not None:
        text = json.dumps(meta, sort_keys=True, separators=(",", ":"), allow_nan=True)
        items[META] = np.frombuffer(text.encode(), dtype=np.uint8)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for name in sorted(items):
            arr = np.asarray(items[name])
            if not arr.flags.c_contiguous:  # (ascontiguousarray would turn 0-d into 1-d)
                arr = arr.copy(order="C")
            payload = io.BytesIO()
            np.lib.format.write_array(payload, arr, allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_EPOCH)
            info.external_attr = 0o644 << 16
            zf.writestr(info, payload.getvalue())
    return buf.getvalue()


def loads(data: bytes) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """(arrays, meta) from bytes written by `dumps` (or any pickle-free .npz)."""
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    raw = arrays.pop(META, None)
    meta = json.loads(raw.tobytes().decode()) if raw is not None else {}
    return arrays, meta
