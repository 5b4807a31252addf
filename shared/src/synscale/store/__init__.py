"""Object storage: one interface, a MinIO/S3 implementation and a filesystem one."""

from synscale.store.base import (
    ObjectInfo,
    ObjectNotFound,
    ObjectStore,
    StoreAuthError,
    StoreError,
    StoreUnavailable,
)
from synscale.store.file import FileStore

__all__ = [
    "FileStore",
    "ObjectInfo",
    "ObjectNotFound",
    "ObjectStore",
    "StoreAuthError",
    "StoreError",
    "StoreUnavailable",
]
