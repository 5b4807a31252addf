"""`synscale train` end to end on a FileStore: synthetic cells, and --real-only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from synscale.cli import main
from synscale.store.file import FileStore
from synscale_trainer.evalsets import OOD_NAMES

from .conftest import STUDY


def test_train_prints_id_and_ood_table(cell_store: FileStore, capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "train",
        "--cells",
        "fake/2/classname,fake/cfg4/classname",
        "--study",
        STUDY,
        "--store",
        str(cell_store.root),
        "--n",
        "10",
        "--real-per-class",
        "2",
        "--arch",
        "embedded-cnn",
        "--min-steps",
        "3",
        "--max-steps",
        "3",
        "--batch-size",
        "16",
        "--eval-limit",
        "40",
        "--workers",
        "0",
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "120 training images, 3 steps" in out
    for name in ("fashion-mnist-test", *OOD_NAMES):
        assert f"\n{name:<20}     40 " in out


def test_real_only_and_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = [
        "train",
        "--study",
        STUDY,
        "--store",
        str(tmp_path / "store"),
        "--eval",
        "fashion-mnist-test",
        "--min-steps",
        "2",
        "--max-steps",
        "2",
        "--eval-limit",
        "20",
        "--workers",
        "0",
        "--json",
    ]
    assert main([*base, "--real-only", "--n", "5"]) == 0
    assert '"train_images": "50"' in capsys.readouterr().out
    assert main([*base, "--cells", "nothing/2/classname", "--n", "5"]) == 2
    assert "cells: cell nothing|cfg=2|classname has no shards" in capsys.readouterr().err
    assert main([*base, "--real-only", "--arch", "nonet"]) == 2
    assert "arch: unknown supervised architecture 'nonet'" in capsys.readouterr().err


def test_train_takes_a_per_class_allocation(cell_store: FileStore, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """`--class-n` (inline or the planner's JSON) trains on exactly those images per class."""
    from synscale.classes import fashion_mnist

    counts = {cid: 1 + i for i, cid in enumerate(fashion_mnist().ids)}  # 55 images
    (tmp_path / "alloc.json").write_text(json.dumps(counts))
    base = ["train", "--cells", "fake/2/classname", "--study", STUDY, "--store", str(cell_store.root),
            "--eval", "fashion-mnist-test", "--min-steps", "2", "--max-steps", "2", "--eval-limit", "20",
            "--workers", "0", "--json"]
    assert main([*base, "--class-n", f"@{tmp_path / 'alloc.json'}"]) == 0
    assert '"train_images": "55"' in capsys.readouterr().out
    inline = ",".join(f"{k}={v}" for k, v in counts.items())
    assert main([*base, "--class-n", inline]) == 0
    assert '"train_images": "55"' in capsys.readouterr().out
    assert main([*base, "--class-n", "tshirt=two"]) == 2
    assert "--class-n: 'tshirt=two' is not CLASS_ID=IMAGES" in capsys.readouterr().err
