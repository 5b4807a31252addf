"""`synscale score` on local shards, and the scorer's sub-commands are registered."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from synscale.cli import build_parser, main
from synscale_scorer.plan import Cell

from .conftest import make_shard, real_images

CELL = Cell("embedded", 2.0, "classname")


def _shards(tmp_path: Path) -> list[str]:
    paths = []
    for cid in ("tshirt", "trouser"):
        p = tmp_path / f"{cid}.tar"
        p.write_bytes(make_shard("local", CELL, cid, 0, real_images(cid, 4)))
        paths.append(str(p))
    return paths


def test_score_prints_the_per_class_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shards = _shards(tmp_path)
    assert main(["score", "--cell", "embedded/2/classname", "--shards", *shards, "--no-fid"]) == 0
    out = capsys.readouterr().out
    for text in ("class", "precision", "diversity_std", "tshirt", "trouser", "8 scored, 0 skipped"):
        assert text in out
    assert main(["score", "--cell", "embedded/cfg2/classname", "--shards", *shards, "--no-fid",
                 "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["scored"] == 8 and scores["macro_f1"] > 0.8 and scores["fid"] is None
    assert [c["class_id"] for c in scores["classes"]] == ["tshirt", "trouser"]


def test_bad_cell_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["score", "--cell", "embedded/two/classname", "--shards", "x.tar"]) == 2
    assert "cell: cfg 'two' is not a number" in capsys.readouterr().err


def test_subcommands_are_registered() -> None:
    parser = build_parser()
    args = parser.parse_args(["embedded", "train-reference", "--seed", "5", "--epochs", "1"])
    assert args.seed == 5 and args.func.__name__ == "cmd_train_reference"
    args = parser.parse_args(["scorer", "convert-lpips", "--net", "vgg"])
    assert args.net == "vgg" and args.func.__name__ == "cmd_convert_lpips"
