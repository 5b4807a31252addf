"""The evaluation cache: built once per process, the same metrics as building per run, and a key
that changes with the set, its severity, its seed and its images (never a stale hit)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch

from synscale import classes as core
from synscale_trainer import evalcache, evalsets, ood
from synscale_trainer.evaluate import evaluate
from synscale_trainer.models import arch_info, build_classifier


@pytest.fixture(autouse=True)
def fresh_cache() -> Iterator[None]:
    evalcache.CACHE.clear()
    yield
    evalcache.CACHE.clear()


def _uncached_top1(model: torch.nn.Module, name: str, indices: np.ndarray) -> tuple[float, np.ndarray]:
    """Top-1 the way evaluation worked before the cache: shift, preprocess, forward, per run."""
    images, labels = evalsets.fashion_set(name, indices)
    pre = arch_info("embedded-cnn").preprocess()
    with torch.no_grad():
        pred = model.eval()(pre.batch(images)).argmax(1).numpy()
    return float((pred == labels).mean()), pred == labels


@pytest.mark.parametrize("name", ["fashion-mnist-test", "rotation", "elastic"])
def test_cached_and_uncached_evaluation_agree(name: str) -> None:
    torch.manual_seed(0)
    model = build_classifier("embedded-cnn", 10)
    fm = core.fashion_mnist()
    (es,) = evalsets.resolve_eval_sets([name], fm, {}, limit=120)
    pre = arch_info("embedded-cnn").preprocess()
    first = evaluate(model, es, pre, fm, device=torch.device("cpu"), batch_size=50)
    assert (evalcache.CACHE.misses, evalcache.CACHE.hits) == (1, 0)
    again = evaluate(model, es, pre, fm, device=torch.device("cpu"), batch_size=50)
    assert (evalcache.CACHE.misses, evalcache.CACHE.hits) == (1, 1)  # the second run reused the tensor
    assert again == first
    top1, bits = _uncached_top1(model, name, np.linspace(0, 9999, 120).round().astype(np.int64))
    assert first.top1 == pytest.approx(top1)
    assert np.array_equal(np.unpackbits(np.frombuffer(first.correct, np.uint8))[:120].astype(bool), bits)


def test_the_key_names_set_severity_seed_and_images(monkeypatch: pytest.MonkeyPatch) -> None:
    pre = arch_info("embedded-cnn").preprocess()
    idx = np.arange(30)
    base = evalsets.eval_key("rotation", idx, pre)
    assert evalsets.eval_key("rotation", idx, pre) == base
    assert evalsets.eval_key("elastic", idx, pre) != base  # set
    assert evalsets.eval_key("rotation", idx[:20], pre) != base  # images (limit, class subset)
    assert evalsets.eval_key("rotation", idx, pre.with_augment(True)) != base  # preprocessing
    built = evalsets.fashion_tensors("rotation", idx, pre)[0]

    monkeypatch.setattr(ood, "ROTATION_DEG", 35.0)  # severity
    steeper = evalsets.eval_key("rotation", idx, pre)
    assert steeper != base and dict(steeper.severity) == {"degrees": 35.0}
    rotated_more = evalsets.fashion_tensors("rotation", idx, pre)[0]
    assert not torch.equal(rotated_more, built)  # a miss that rebuilt, not the stale tensor
    monkeypatch.undo()

    monkeypatch.setattr(ood, "OOD_SEED", 99)  # seed: other signs of rotation per image
    reseeded = evalsets.eval_key("rotation", idx, pre)
    assert reseeded != base and reseeded.seed == 99
    assert not torch.equal(evalsets.fashion_tensors("rotation", idx, pre)[0], built)
    assert evalcache.CACHE.misses == 3 and len(evalcache.CACHE) == 3


def test_the_cache_is_bounded_in_bytes() -> None:
    cache = evalcache.EvalTensorCache(max_bytes=3 * 100 * 4 + 3 * 8)
    pre = arch_info("embedded-cnn").preprocess()
    for i in range(5):
        key = evalsets.eval_key("fashion-mnist-test", np.arange(i + 1), pre)
        cache.get(key, lambda: (torch.zeros(1, 100), torch.zeros(1, dtype=torch.long)))
    assert len(cache) == 3 and cache.nbytes <= cache.max_bytes
