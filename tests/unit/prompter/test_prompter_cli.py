"""`synscale prompts ...` and the torch-free base import."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from synscale_prompter.cli import add_commands


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="synscale")
    add_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return int(args.func(args))


def test_show_imagenet_hypernym(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["prompts", "show", "--classes", "imagenet", "--strategy", "classname_hypernym",
                "--class", "n01440764", "--n", "5"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"n01440764\t{i}\ttench, cyprinid" for i in range(5)]


def test_show_through_the_synscale_command(capsys: pytest.CaptureFixture[str]) -> None:
    from synscale.cli import main

    assert main(["prompts", "show", "--classes", "fashion-mnist", "--strategy", "classname_description",
                 "--class", "sandal", "--n", "1"]) == 0
    assert capsys.readouterr().out == \
        "sandal\t0\tsandal, a shoe consisting of a sole fastened by straps to the foot\n"
    assert main(["prompts", "show", "--strategy", "poetry"]) == 2
    assert "--strategy: unknown strategy 'poetry'" in capsys.readouterr().err
    assert main(["prompts", "show", "--classes", "fashion-mnist", "--class", "hat"]) == 2
    assert "class_ids[0]: unknown class 'hat'" in capsys.readouterr().err


def test_show_custom_file_and_templates_by_study(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "mine.csv"
    path.write_text("id,name\nred-car,red car\nbus,bus\n")
    assert run(["prompts", "show", "--classes", str(path), "--strategy", "clip_templates",
                "--class", "bus", "--n", "3", "--start", "7", "--study-id", "s1"]) == 0
    lines = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert [(c, i) for c, i, _ in lines] == [("bus", "7"), ("bus", "8"), ("bus", "9")]
    assert all("bus" in text for _, _, text in lines)


def test_listings(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["prompts", "strategies"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert names == ["classname", "classname_description", "classname_hypernym", "clip_templates",
                     "word2sen", "in_captions"]
    assert run(["prompts", "classsets"]) == 0
    out = capsys.readouterr().out
    assert "imagenet" in out and " 1000 " in out and "fashion-mnist" in out


def test_base_import_carries_no_torch() -> None:
    code = (
        "import sys\n"
        "import synscale_prompter.servicer, synscale_prompter.worker, synscale_prompter.cli\n"
        "from synscale_prompter.builder import build_prompts, prepare_strategy\n"
        "from synscale_prompter.classes import custom_from_entries\n"
        "cs = custom_from_entries([{'id': 'a', 'name': 'apple'}], 'x', resolve_wordnet=False)\n"
        "for s in ('classname', 'clip_templates'):\n"
        "    build_prompts(prepare_strategy(s, cs), cs, 0, 3, 'seed-0')\n"
        "heavy = [m for m in ('torch', 'transformers', 'PIL', 'open_clip', 'timm') if m in sys.modules]\n"
        "print(','.join(heavy) or 'clean')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "clean"
