"""Deterministic partial files and the rows/moments equivalence."""

from __future__ import annotations

import numpy as np

from synscale_scorer import npzio
from synscale_scorer.partial import ClassPart, ShardPartial
from synscale_scorer.stats import FeatureMoments, frechet_distance


def test_npz_bytes_are_deterministic_and_roundtrip() -> None:
    arrays = {"b": np.arange(6, dtype=np.float32).reshape(2, 3), "a": np.array(5, np.int64)}
    first = npzio.dumps(arrays, {"x": 1})
    assert first == npzio.dumps(dict(reversed(arrays.items())), {"x": 1})
    back, meta = npzio.loads(first)
    assert meta == {"x": 1} and back["a"].shape == () and int(back["a"]) == 5
    np.testing.assert_array_equal(back["b"], arrays["b"])


def test_partial_roundtrip_keeps_every_field() -> None:
    rng = np.random.default_rng(0)
    part = ClassPart(n=3, confusion=np.array([2, 1]), ref_sum=rng.normal(size=4), ref_sumsq=rng.random(4),
                     sample_index=np.array([0, 2]), sample_rows=rng.normal(size=(2, 5)).astype(np.float32),
                     lpips_index=np.array([1]), lpips_images=np.zeros((1, 1, 8, 8), np.uint8))
    p = ShardPartial("shard/key.tar", "abc", {"tshirt": part},
                     inception_moments=FeatureMoments.of_rows(rng.normal(size=(9, 5))),
                     problems=[{"shard": "s", "key": "k", "reason": "r"}], skipped=1, info={"reference": "x"})
    data = p.to_bytes()
    q = ShardPartial.from_bytes(data)
    assert q.to_bytes() == data
    assert q.classes["tshirt"].n == 3 and q.skipped == 1 and q.problems == p.problems
    assert q.inception_moments is not None and q.inception_moments.n == 9
    np.testing.assert_array_equal(q.classes["tshirt"].sample_rows, part.sample_rows)


def test_rows_and_moments_partials_give_the_same_fid() -> None:
    rng = np.random.default_rng(1)
    real = FeatureMoments.of_rows(rng.normal(size=(300, 6)))
    rows = rng.normal(0.3, 1.1, size=(120, 6)).astype(np.float32)
    as_rows = ShardPartial.from_bytes(ShardPartial("s", inception_rows=rows).to_bytes()).inception()
    as_moments = ShardPartial.from_bytes(
        ShardPartial("s", inception_moments=FeatureMoments.of_rows(rows)).to_bytes()).inception()
    assert as_rows is not None and as_moments is not None
    assert abs(frechet_distance(real, as_rows) - frechet_distance(real, as_moments)) < 1e-10
