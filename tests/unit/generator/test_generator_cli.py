"""`synscale generate` writes one shard per class and CFG value, and a sample grid."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from synscale import layout
from synscale.cli import main
from synscale.shards import iter_shard
from synscale.store.file import FileStore


def test_generate_writes_shards_and_a_grid_then_reuses_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    args = ["generate", "--generator", "g", "--backend", "standin", "--classes", "fashion-mnist",
            "--class-ids", "tshirt,bag", "--cfg", "1,2", "--n", "3", "--batch-size", "4",
            "--out", str(tmp_path), "--no-progress"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "4 shards" in out and "4 written, 0 already there" in out
    store = FileStore(tmp_path, "synscale")
    for cfg in (1.0, 2.0):
        for class_id in ("tshirt", "bag"):
            key = layout.shard_key("cli", "g", cfg, "classname", class_id, 0, 3)
            samples = list(iter_shard(store.get(key)))
            assert len(samples) == 3 and samples[0].meta["class_id"] == class_id
    grid = Image.open(tmp_path / "grid-g.png")
    assert grid.mode == "L" and grid.width > grid.height  # 2 class rows x (2 CFG x 3) columns
    margin = np.asarray(grid)[16:, :80]  # an 80 px margin of class names: mostly paper, some ink
    assert margin.min() < 128 and (margin == 255).mean() > 0.8
    assert main(args) == 0
    assert "0 written, 4 already there" in capsys.readouterr().out


@pytest.mark.parametrize(("flag", "value", "message"), [
    ("--cfg", "1,nan", "--cfg: CFG must be finite"),
    ("--cfg", "-2", "--cfg: CFG must be >= 0"),
    ("--backend", "dalle", "generator.backend: unknown backend 'dalle'"),
    ("--resolution", "30", "generator.resolution"),
    ("--option", "compile", "--option: expected KEY=VALUE"),
])
def test_generate_rejects_bad_arguments_with_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str, value: str, message: str,
) -> None:
    args = ["generate", "--backend", "standin", "--n", "2", "--class-ids", "bag",
            "--out", str(tmp_path), "--no-progress", flag, value]
    assert main(args) == 2
    assert message in capsys.readouterr().err
    assert not list(tmp_path.rglob("*.tar"))
