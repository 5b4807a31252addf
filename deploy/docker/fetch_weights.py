"""Copy model weights from the object store into a local folder before a service starts.

The Helm chart runs this as an init container when `models.source=objectStore`, so
GPU pods can load diffusers / transformers directories from local disk (no model hub is
reachable) without a ReadWriteMany volume. It reads the same S3_* / SYNSCALE_RUNTIME
environment as the services. Objects whose local copy already has the same size and
sha256 are skipped, so a restarted pod with a persistent cache does not download again.

    python /opt/synscale/fetch_weights.py --prefix models/sd15/ --dest /models
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import sys
from pathlib import Path, PurePosixPath

from synscale.config import RuntimeConfig, make_store
from synscale.errors import SynscaleError
from synscale.logging_setup import configure_logging
from synscale.store.base import ObjectInfo, ObjectStore

log = logging.getLogger("synscale.fetch_weights")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _local_path(dest: Path, prefix: str, key: str) -> Path:
    rel = PurePosixPath(key[len(prefix):].lstrip("/"))
    if not rel.parts or ".." in rel.parts or rel.is_absolute():
        raise ValueError(f"object key {key!r} does not map to a file under --dest")
    return dest.joinpath(*rel.parts)


def _up_to_date(path: Path, info: ObjectInfo) -> bool:
    if not path.is_file() or path.stat().st_size != info.size:
        return False
    return not info.sha256 or _sha256(path) == info.sha256


def fetch(store: ObjectStore, prefix: str, dest: Path) -> tuple[int, int]:
    """Mirror every object under `prefix` into `dest`; returns (downloaded, skipped)."""
    if not prefix:
        raise ValueError("--prefix must name a folder in the bucket, e.g. models/sd15/")
    downloaded = skipped = 0
    for listed in store.list(prefix):
        # Listings may omit the checksum (S3 keeps it as user metadata); stat has it.
        info = listed if listed.sha256 else (store.stat(listed.key) or listed)
        path = _local_path(dest, prefix, info.key)
        if _up_to_date(path, info):
            skipped += 1
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        store.get_file(info.key, path)
        if info.sha256 and _sha256(path) != info.sha256:
            path.unlink()
            raise OSError(f"{info.key}: sha256 of the download does not match the store's")
        downloaded += 1
    if downloaded + skipped == 0:
        raise FileNotFoundError(f"no objects under {prefix!r} in bucket; upload the weights first")
    return downloaded, skipped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefix", required=True, help="object key prefix holding the weights")
    parser.add_argument("--dest", required=True, type=Path, help="local folder to fill")
    args = parser.parse_args(argv)
    configure_logging("fetch-weights")
    try:
        down, skip = fetch(make_store(RuntimeConfig.from_env()), args.prefix, args.dest)
    except (OSError, ValueError, SynscaleError) as exc:
        log.error("fetching weights failed: %s", exc)
        return 1
    log.info("weights ready", extra={"downloaded": down, "skipped": skip,
                                     "prefix": args.prefix, "dest": str(args.dest)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
