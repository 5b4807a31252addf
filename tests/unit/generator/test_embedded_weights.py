"""The committed embedded T2I weights: checksum, loading, and what they generate."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
import pytest

from synscale.errors import PreconditionFailed
from synscale_generator.embedded.backend import EmbeddedBackend
from synscale_generator.embedded.cli import add_embedded_commands
from synscale_generator.embedded.grid import sample_grid
from synscale_generator.embedded.testing import tiny_backend
from synscale_generator.embedded.weights import (
    DEFAULT_WEIGHTS,
    checksum_path,
    load_weights,
    sha256_of,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_committed_weights_match_their_checksum() -> None:
    recorded = checksum_path(DEFAULT_WEIGHTS).read_text().split()
    assert recorded == [sha256_of(DEFAULT_WEIGHTS), DEFAULT_WEIGHTS.name]
    assert DEFAULT_WEIGHTS.stat().st_size < 20 * 1024 * 1024


def test_altered_weights_are_refused(tmp_path: Path) -> None:
    copy = tmp_path / DEFAULT_WEIGHTS.name
    shutil.copyfile(DEFAULT_WEIGHTS, copy)
    shutil.copyfile(checksum_path(DEFAULT_WEIGHTS), checksum_path(copy))
    with copy.open("r+b") as fh:
        fh.truncate(copy.stat().st_size // 2)
    with pytest.raises(PreconditionFailed, match=str(copy)):
        load_weights(copy)
    checksum_path(copy).unlink()  # without a checksum, the truncation is still caught
    with pytest.raises(PreconditionFailed, match="unreadable or incomplete"):
        load_weights(copy)


@pytest.mark.slow
def test_committed_weights_generate_greyscale_images() -> None:
    """Real MiniLM + trained UNet: right shape and mode, and not a blank or noise image."""
    backend = EmbeddedBackend()
    assert int(backend.describe()["parameters"]) > 1_000_000
    images = backend.generate(["sneaker", "a photo of a trouser"], [0, 1], 2.0, 10)
    for image in images:
        arr = np.asarray(image)
        assert image.mode == "L" and arr.shape == (32, 32)
        assert arr.min() < 40 and arr.max() > 150  # a dark background and a bright garment
        assert arr[:, :2].mean() < 40  # Fashion-MNIST's black border (padding 28 → 32)


def test_sample_grid_layout() -> None:
    grid = sample_grid(
        tiny_backend(),
        ["bag", "coat", "dress"],
        [1.0, 3.0],
        per_class=2,
        seed=0,
        steps=2,
        scale=1,
        label_width=40,
    )
    assert grid.mode == "L"
    # 40 px of labels, 4 tiles of 32 + pad 2, a 4 px wider gap between the CFG blocks; 14 px header.
    assert grid.size == (40 + 2 + 4 * 34 + 4, 14 + 2 + 3 * 34)
    pixels = np.asarray(grid)
    assert pixels[16:, :40].min() < 128  # class names are written in the left margin
    assert pixels[:14, 40:].min() < 128  # and "CFG 1" / "CFG 3" over the blocks


def test_train_generator_command_is_registered() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    add_embedded_commands(sub)
    args = parser.parse_args(["embedded", "train-generator", "--minutes", "1", "--seed", "7"])
    assert args.seed == 7 and args.minutes == 1.0 and callable(args.func)
