"""MinIO / S3 object store for the distributed runtime (minio SDK, S3-generic)."""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import urllib3
from minio import Minio
from minio.error import InvalidResponseError, S3Error, ServerError

from synscale.store.base import (
    ObjectInfo,
    ObjectNotFound,
    ObjectStore,
    StoreAuthError,
    StoreError,
    StoreUnavailable,
    sha256_file,
)

PART_SIZE = 8 * 1024 * 1024  # objects above this go up as multipart uploads
_AUTH_CODES = {"SignatureDoesNotMatch", "InvalidAccessKeyId", "AccessDenied", "InvalidToken"}
_MISSING_CODES = {"NoSuchKey", "NoSuchObject", "NoSuchBucket"}
# Answers that mean "the server is busy, starting or partly down", not "your request is bad":
# waited out by the consume loop (ADR 0014), like a refused connection.
_TRANSIENT_CODES = {"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout",
                    "XMinioServerNotInitialized", "XMinioReadQuorum", "XMinioWriteQuorum",
                    "OperationTimedOut", "XAmzContentSHA256Mismatch"}


def _status(exc: BaseException) -> int:
    response = getattr(exc, "response", None)
    code = getattr(response, "status", 0) or getattr(exc, "_status_code", 0) or getattr(exc, "_code", 0)
    return int(code or 0)


class MinioStore(ObjectStore):
    """One bucket on an S3-compatible server.

    S3 makes an object visible only when its (multipart) upload completes, which gives
    the all-or-nothing write the contract asks for. The sha256 travels as user metadata.
    Credentials are required arguments: there are no defaults in code.
    """

    def __init__(
        self,
        endpoint: str,
        access_key: str,
        secret_key: str,
        bucket: str,
        *,
        secure: bool = False,
        region: str | None = None,
        create_bucket: bool = True,
        timeout_s: float = 30.0,
        retries: int = 2,
        connect: bool = True,
    ) -> None:
        if not access_key or not secret_key:
            raise StoreAuthError("S3 credentials are missing: set S3_ACCESS_KEY and S3_SECRET_KEY")
        endpoint = endpoint.removeprefix("http://").removeprefix("https://").rstrip("/")
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=min(5.0, timeout_s), read=timeout_s),
            retries=urllib3.Retry(total=retries, backoff_factor=0.2, status_forcelist=(502, 503, 504)),
            maxsize=16,
        )
        self.endpoint = endpoint
        self.bucket = bucket
        self.client = Minio(
            endpoint, access_key=access_key, secret_key=secret_key, secure=secure,
            region=region, http_client=http,
        )
        self._create_bucket = create_bucket
        self._bucket_ready = not create_bucket
        if connect:
            self.ping()

    def ping(self) -> None:
        """Raise StoreUnavailable unless the server answers now; create the bucket once.

        With `connect=False` the constructor does not call this, so a service can start
        while the store is down; the first operation (or the service's health loop) does.
        """
        if self._create_bucket and not self._bucket_ready:
            self._translated("open bucket", self._ensure_bucket)
            self._bucket_ready = True
        else:
            self._translated("ping", self.client.bucket_exists, self.bucket)

    def _ensure_bucket(self) -> None:
        if not self.client.bucket_exists(self.bucket):
            try:
                self.client.make_bucket(self.bucket)
            except S3Error as exc:
                if exc.code not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                    raise

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run an SDK call (the bucket opened first) with its failures translated."""
        if not self._bucket_ready:
            self.ping()
        return self._translated(what, fn, *args, **kwargs)

    def _translated(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run an SDK call and translate its failures into the store's error types."""
        try:
            return fn(*args, **kwargs)
        except S3Error as exc:
            if exc.code in _TRANSIENT_CODES or _status(exc) >= 500 or _status(exc) == 429:
                raise StoreUnavailable(
                    f"S3 at {self.endpoint} is unavailable during {what}: {exc.code}: {exc.message}"
                ) from exc
            if exc.code in _AUTH_CODES:
                raise StoreAuthError(
                    f"S3 at {self.endpoint} rejected the credentials ({exc.code}) during {what}; "
                    "check S3_ACCESS_KEY / S3_SECRET_KEY"
                ) from None
            if exc.code in _MISSING_CODES:
                missing = f"{self.bucket}/{exc.object_name or ''}"
                raise ObjectNotFound(f"{missing} does not exist ({what})") from None
            raise StoreError(f"S3 {what} failed: {exc.code}: {exc.message}") from exc
        except (ServerError, InvalidResponseError) as exc:
            if isinstance(exc, ServerError) or _status(exc) >= 500 or _status(exc) == 429:
                raise StoreUnavailable(f"S3 at {self.endpoint} is unavailable during {what}: {exc}") from exc
            raise StoreError(f"S3 {what} failed: {exc}") from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise StoreUnavailable(
                f"S3 endpoint {self.endpoint} is unreachable during {what}: {exc}"
            ) from exc

    def put(self, key, data, *, content_type="application/octet-stream", metadata=None):  # type: ignore[no-untyped-def]
        key = self._check_key(key)
        if not isinstance(data, bytes | bytearray | memoryview):
            raise StoreError(f"put({key!r}) needs bytes, got {type(data).__name__}")
        sha = hashlib.sha256(data).hexdigest()
        meta = {**(metadata or {}), "sha256": sha}
        self._call(
            f"put {key}", self.client.put_object, self.bucket, key, io.BytesIO(data), len(data),
            content_type=content_type, metadata=meta, part_size=PART_SIZE,
        )
        return ObjectInfo(key=key, size=len(data), sha256=sha, metadata=dict(metadata or {}))

    def put_file(self, key, path, *, content_type="application/octet-stream", metadata=None):  # type: ignore[no-untyped-def]
        key = self._check_key(key)
        src = Path(path)
        if not src.is_file():
            raise StoreError(f"put_file({key!r}): {src} is not a file")
        sha = sha256_file(src)
        meta = {**(metadata or {}), "sha256": sha}
        self._call(
            f"put {key}", self.client.fput_object, self.bucket, key, str(src),
            content_type=content_type, metadata=meta, part_size=PART_SIZE,
        )
        return ObjectInfo(key=key, size=src.stat().st_size, sha256=sha, metadata=dict(metadata or {}))

    def get(self, key: str) -> bytes:
        key = self._check_key(key)
        response = self._call(f"get {key}", self.client.get_object, self.bucket, key)
        try:
            return bytes(self._call(f"read {key}", response.read))
        finally:
            response.close()
            response.release_conn()

    def get_file(self, key: str, path: Path | str) -> ObjectInfo:
        key = self._check_key(key)
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".tmp-{target.name}-{os.getpid()}")
        try:
            self._call(f"get {key}", self.client.fget_object, self.bucket, key, str(tmp))
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        info = self.stat(key)
        if info is None:
            raise ObjectNotFound(f"{self.bucket}/{key} vanished during download")
        return info

    def stat(self, key: str) -> ObjectInfo | None:
        key = self._check_key(key)
        try:
            obj = self._call(f"stat {key}", self.client.stat_object, self.bucket, key)
        except ObjectNotFound:
            return None
        headers = obj.metadata or {}
        user = {
            k[len("x-amz-meta-"):].lower(): v
            for k, v in headers.items()
            if k.lower().startswith("x-amz-meta-")
        }
        sha = user.pop("sha256", "")
        return ObjectInfo(key=key, size=int(obj.size or 0), sha256=sha, metadata=user)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        objects = self._call(
            f"list {prefix}", self.client.list_objects, self.bucket, prefix=prefix, recursive=True
        )
        try:
            for obj in objects:
                yield ObjectInfo(key=obj.object_name, size=int(obj.size or 0))
        except (S3Error, ServerError, InvalidResponseError, urllib3.exceptions.HTTPError, OSError) as exc:
            self._translated(f"list {prefix}", _raise, exc)

    def children(self, prefix: str) -> tuple[str, ...]:
        def names() -> tuple[str, ...]:
            found = self.client.list_objects(self.bucket, prefix=prefix, recursive=False)
            return tuple(sorted({o.object_name[len(prefix):].rstrip("/") for o in found} - {""}))

        return tuple(self._call(f"list {prefix}", names))

    def delete(self, key: str) -> None:
        key = self._check_key(key)
        self._call(f"delete {key}", self.client.remove_object, self.bucket, key)


def _raise(exc: BaseException) -> None:
    raise exc
