"""deploy/docker/fetch_weights.py: the init container that mirrors weights from the store."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from synscale.store.file import FileStore

ROOT = Path(__file__).resolve().parents[3]


def _module() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "fetch_weights", ROOT / "deploy" / "docker" / "fetch_weights.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


fw = _module()


def test_mirrors_a_prefix_and_skips_what_is_already_there(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "store", "b")
    store.put("models/sd/unet/config.json", b'{"a": 1}')
    store.put("models/sd/unet/weights.safetensors", b"\x00" * 1000)
    store.put("models/other/x.bin", b"not mine")
    dest = tmp_path / "models"
    assert fw.fetch(store, "models/sd/", dest) == (2, 0)
    assert (dest / "unet" / "config.json").read_bytes() == b'{"a": 1}'
    assert (dest / "unet" / "weights.safetensors").stat().st_size == 1000
    assert not (dest / "x.bin").exists()
    assert fw.fetch(store, "models/sd/", dest) == (0, 2)  # a restarted pod re-downloads nothing
    (dest / "unet" / "config.json").write_bytes(b'{"a": 2}')  # same size, wrong bytes
    assert fw.fetch(store, "models/sd/", dest) == (1, 1)
    assert (dest / "unet" / "config.json").read_bytes() == b'{"a": 1}'


def test_empty_prefix_is_an_error_naming_it(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "store", "b")
    with pytest.raises(FileNotFoundError, match="models/none/"):
        fw.fetch(store, "models/none/", tmp_path / "d")
    with pytest.raises(ValueError, match="--prefix"):
        fw.fetch(store, "", tmp_path / "d")


def test_main_reports_failure_with_exit_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNSCALE_RUNTIME", "embedded")
    monkeypatch.setenv("SYNSCALE_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(fw, "configure_logging", lambda name: None)  # keep pytest's handlers
    assert fw.main(["--prefix", "models/missing/", "--dest", str(tmp_path / "d")]) == 1
