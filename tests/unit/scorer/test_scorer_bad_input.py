"""Bad samples are reported and skipped; the rest of the shard is scored."""

from __future__ import annotations

import io
import tarfile

import numpy as np

from synscale import ids
from synscale.shards import Sample, encode_png, write_shard
from synscale_scorer.scoring import Networks, score_shard_bytes

from .conftest import TinyFeatures, make_shard, random_reference, real_images, tiny_plan


def _nets() -> Networks:
    return Networks(reference=random_reference(), inception=TinyFeatures(), inception_dim=16)


def _meta(index: int, class_id: str = "tshirt") -> dict:
    return {"class_id": class_id, "index": index, "class_index": 0}


def test_bad_members_are_counted_and_the_rest_scored() -> None:
    plan = tiny_plan(lpips=False, n=20)
    good = real_images("tshirt", 3)
    samples = [Sample(ids.sample_key("tshirt", i), encode_png(im), _meta(i)) for i, im in enumerate(good)]
    samples += [
        Sample("tshirt_000000003", b"not a png at all", _meta(3)),
        Sample("tshirt_000000004", encode_png(np.zeros((28, 28), np.uint8)), _meta(4)),  # wrong size
        Sample("tshirt_000000005", encode_png(np.zeros((32, 32, 3), np.uint8)), _meta(5)),  # RGB
        Sample("tshirt_000000006", encode_png(good[0]), _meta(6, "unicorn")),  # not a class
        Sample("tshirt_000000007", encode_png(good[0]), {"class_id": "tshirt"}),  # no index
        Sample("tshirt_000000008", encode_png(good[0]), _meta(99)),  # index outside 0..N-1
    ]
    partial = score_shard_bytes(plan, _nets(), write_shard(samples), "bad.tar")
    assert partial.scored == 3
    assert partial.skipped == 6
    reasons = " | ".join(p["reason"] for p in partial.problems)
    for text in ("not a decodable image", "size is (28, 28)", "mode is RGB", "unicorn", "index", "outside"):
        assert text in reasons


def test_non_image_member_and_truncated_tar() -> None:
    plan = tiny_plan(lpips=False, n=20)
    data = make_shard(plan.study_id, plan.cell, "tshirt", 0, real_images("tshirt", 4))
    # add a member that is not <key>.<ext> and a sample with only a .txt member
    buf = io.BytesIO(data[: -1024])  # drop the end-of-archive blocks
    with tarfile.open(fileobj=io.BytesIO(data)) as src, tarfile.open(fileobj=buf, mode="w") as tar:
        for m in src:
            tar.addfile(m, src.extractfile(m))
        for name, payload in (("notes", b"x"), ("tshirt_000000009.txt", b"hello")):
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    partial = score_shard_bytes(plan, _nets(), buf.getvalue(), "odd.tar")
    assert partial.scored == 4 and partial.skipped == 2

    with tarfile.open(fileobj=io.BytesIO(data)) as src:
        members = src.getmembers()
    cut = members[5].offset_data + 10  # inside the third sample's json
    partial = score_shard_bytes(plan, _nets(), data[:cut], "cut.tar")
    assert partial.scored == 2
    assert any("corrupt tar" in p["reason"] for p in partial.problems)


def test_duplicate_image_in_a_shard_is_skipped() -> None:
    plan = tiny_plan(lpips=False)
    im = real_images("trouser", 1)[0]
    samples = [Sample(k, encode_png(im), _meta(1, "trouser")) for k in ("a", "b")]
    partial = score_shard_bytes(plan, _nets(), write_shard(samples), "dup.tar")
    assert partial.scored == 1 and partial.skipped == 1
