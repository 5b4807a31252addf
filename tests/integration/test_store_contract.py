"""The object-store contract, run identically against MinioStore (real server) and FileStore."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pytest

from synscale.store.base import ObjectStore, StoreAuthError, StoreError, StoreUnavailable
from synscale.store.file import FileStore


@pytest.fixture(params=["file", pytest.param("minio", marks=pytest.mark.infra)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "file":
        return FileStore(tmp_path / "store", "contract")
    return request.getfixturevalue("minio_store")  # type: ignore[no-any-return]


def test_put_get_stat_list_delete(store: ObjectStore) -> None:
    info = store.put("a/one.bin", b"hello", metadata={"kind": "greeting"})
    store.put("a/two.bin", b"world")
    store.put("b/three.bin", b"!")
    assert info.sha256 == hashlib.sha256(b"hello").hexdigest() and info.size == 5
    assert store.get("a/one.bin") == b"hello"
    stat = store.stat("a/one.bin")
    assert stat is not None and stat.sha256 == info.sha256 and stat.metadata.get("kind") == "greeting"
    assert [o.key for o in store.list("a/")] == ["a/one.bin", "a/two.bin"]
    assert [o.key for o in store.list("")] == ["a/one.bin", "a/two.bin", "b/three.bin"]
    store.delete("a/one.bin")
    assert store.stat("a/one.bin") is None and not store.exists("a/one.bin")
    store.delete("a/one.bin")  # deleting again is not an error
    with pytest.raises(KeyError):
        store.get("a/one.bin")


def test_put_if_changed_is_idempotent(store: ObjectStore) -> None:
    _, wrote = store.put_if_changed("x/obj", b"same")
    _, wrote_again = store.put_if_changed("x/obj", b"same")
    _, wrote_new = store.put_if_changed("x/obj", b"different")
    assert (wrote, wrote_again, wrote_new) == (True, False, True)
    assert store.get("x/obj") == b"different"


@pytest.mark.slow
def test_50mb_object_round_trips_through_multipart(store: ObjectStore, tmp_path: Path) -> None:
    src = tmp_path / "big.bin"
    blob = os.urandom(1 << 20) * 50  # 50 MiB; > PART_SIZE so MinIO gets a multipart upload
    src.write_bytes(blob)
    expected = hashlib.sha256(blob).hexdigest()
    info = store.put_file("big/object.bin", src)
    assert info.sha256 == expected and info.size == len(blob)
    stat = store.stat("big/object.bin")
    assert stat is not None and stat.sha256 == expected and stat.size == len(blob)
    dst = tmp_path / "back.bin"
    store.get_file("big/object.bin", dst)
    assert hashlib.sha256(dst.read_bytes()).hexdigest() == expected


def test_reader_never_sees_a_half_written_object(store: ObjectStore) -> None:
    a, b = b"A" * (3 << 20), b"B" * (3 << 20)
    store.put("race/obj", a)
    stop = threading.Event()

    def writer() -> None:
        i = 0
        while not stop.is_set():
            store.put("race/obj", b if i % 2 else a)
            i += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        for _ in range(15):
            data = store.get("race/obj")
            assert data in (a, b), f"torn read of {len(data)} bytes"
    finally:
        stop.set()
        thread.join()


@pytest.mark.parametrize("key", ["../escape", "/abs", "a/../b", "a//b", "sp ace", "ctl\x00x", ""])
def test_unsafe_keys_are_refused(store: ObjectStore, key: str) -> None:
    with pytest.raises(StoreError):
        store.put(key, b"x")


def test_non_bytes_payload_is_a_clear_error(store: ObjectStore) -> None:
    with pytest.raises(StoreError, match="needs bytes"):
        store.put("k", "text")  # type: ignore[arg-type]


@pytest.mark.infra
def test_wrong_minio_secret_is_a_clear_authentication_error(infra_env: dict[str, str], unique: str) -> None:
    from synscale.store.minio import MinioStore

    with pytest.raises(StoreAuthError, match="rejected the credentials"):
        MinioStore(infra_env["S3_ENDPOINT"], infra_env["S3_ACCESS_KEY"], "not-the-secret", f"auth-{unique}")


def test_unreachable_minio_is_a_clear_unavailable_error() -> None:
    from synscale.store.minio import MinioStore

    with pytest.raises(StoreUnavailable, match="unreachable"):
        MinioStore("127.0.0.1:9", "user", "secret-value", "bucket", timeout_s=1, retries=0)


def test_missing_credentials_are_refused_before_any_request() -> None:
    from synscale.store.minio import MinioStore

    with pytest.raises(StoreAuthError, match="S3_ACCESS_KEY"):
        MinioStore("127.0.0.1:9", "", "", "bucket")
