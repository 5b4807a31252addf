"""Shards are WebDataset tars: our writer's output is read back by `webdataset` itself."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import webdataset as wds
from PIL import Image

from synscale.shards import Sample, ShardProblem, encode_png, iter_shard, write_shard


def _samples(n: int = 4) -> list[Sample]:
    rng = np.random.default_rng(0)
    return [
        Sample(f"tshirt_{i:09d}", encode_png(rng.integers(0, 255, (32, 32), dtype=np.uint8)),
               {"class_id": "tshirt", "index": i, "prompt": f"a T-shirt, take {i}"})
        for i in range(n)
    ]


def test_webdataset_reads_our_shard_with_identical_bytes_and_metadata(tmp_path: Path) -> None:
    samples = _samples()
    path = tmp_path / "shard-000000.tar"
    path.write_bytes(write_shard(samples))
    read = list(wds.WebDataset(str(path), shardshuffle=False))
    assert [r["__key__"] for r in read] == [s.key for s in samples]
    for r, s in zip(read, samples, strict=True):
        assert r["png"] == s.png
        assert json.loads(r["json"]) == s.meta
        assert Image.open(io.BytesIO(r["png"])).size == (32, 32)


def test_shard_bytes_are_deterministic() -> None:
    assert write_shard(_samples()) == write_shard(_samples())


def test_corrupt_and_truncated_shards_yield_what_is_readable() -> None:
    data = write_shard(_samples(4))
    problems: list[ShardProblem] = []
    cut = data[: len(data) // 2]
    got = list(iter_shard(cut, problems))
    assert 0 < len(got) < 4
    assert problems, "the truncation must be reported"
    problems.clear()
    assert list(iter_shard(b"not a tar at all", problems)) == []
    assert problems and "corrupt" in problems[0].reason
