"""The streaming input: deterministic epochs, worker split, shuffle buffer, shard cache."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from synscale import classes as core
from synscale.errors import PreconditionFailed
from synscale.store.file import FileStore
from synscale_trainer import stream
from synscale_trainer.cache import Prefetcher, ShardCache
from synscale_trainer.models import arch_info
from synscale_trainer.plan import Cell, plan_training_set
from synscale_trainer.stream import StreamingDataset, make_loader

from .conftest import STUDY


class CountingStore(FileStore):
    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.downloads: list[str] = []

    def get_file(self, key, path):  # type: ignore[no-untyped-def]
        self.downloads.append(key)
        return super().get_file(key, path)


def _dataset(store: FileStore, cache: Path, n: int = 12, real: int = 3, seed: int = 0) -> StreamingDataset:
    plan = plan_training_set(
        store,
        study_id=STUDY,
        cells=[Cell("fake", 2.0, "classname")],
        classes=core.fashion_mnist(),
        n_per_class=n,
        real_per_class=real,
    )
    prefetch = Prefetcher(store, ShardCache(cache))
    prefetch.submit([(s.key, s.sha256) for s in plan.shard_sources])
    pre = arch_info("embedded-cnn").preprocess(augment=True)
    return StreamingDataset(
        plan.sources, cache, pre, core.fashion_mnist().names, seed=seed, shuffle_buffer=16, interleave=4
    )


def _epoch(ds: StreamingDataset, epoch: int) -> tuple[torch.Tensor, list[int], list[str]]:
    ds.set_epoch(epoch)
    items = list(ds)
    return torch.stack([x for x, _, _ in items]), [y for _, y, _ in items], [t for _, _, t in items]


def test_an_epoch_is_a_pure_function_of_seed_and_epoch(cell_store: FileStore, tmp_path: Path) -> None:
    ds = _dataset(cell_store, tmp_path / "cache")
    x0, y0, t0 = _epoch(ds, 0)
    x0b, y0b, t0b = _epoch(_dataset(cell_store, tmp_path / "cache"), 0)
    _, y1, _ = _epoch(ds, 1)
    assert len(y0) == 150 == len(ds)
    assert torch.equal(x0, x0b) and y0 == y0b and t0 == t0b  # same seed, same epoch: same bytes
    assert y0 != y1  # a new epoch is a new order
    assert sorted(y0) == sorted(y1) == sorted([c for c in range(10) for _ in range(15)])


def test_texts_are_prompts_for_synthetic_and_captions_for_real(cell_store: FileStore, tmp_path: Path) -> None:
    _, labels, texts = _epoch(_dataset(cell_store, tmp_path / "cache"), 0)
    names = core.fashion_mnist().names
    assert sum(t == f"a photo of a {names[y]}." for y, t in zip(labels, texts, strict=True)) == 30  # real
    assert (
        sum(t.startswith(f"a photo of a {names[y]}, number") for y, t in zip(labels, texts, strict=True))
        == 120
    )


def test_batches_mix_classes(cell_store: FileStore, tmp_path: Path) -> None:
    _, labels, _ = _epoch(_dataset(cell_store, tmp_path / "cache", real=0), 0)
    first_batch = labels[:16]
    assert len(set(first_batch)) >= 4  # one-class shards are interleaved, then shuffled


def test_workers_split_the_epoch_without_overlap(cell_store: FileStore, tmp_path: Path) -> None:
    ds = _dataset(cell_store, tmp_path / "cache")
    parts = [ds.worker_sources(0, w, 3) for w in range(3)]
    uids = [s.uid for part in parts for s in part]
    assert sorted(uids) == sorted(s.uid for s in ds.sources)
    seen = [y for _, y, _ in make_loader(ds, batch_size=8, num_workers=2) for y in y.tolist()]
    assert len(seen) == len(ds)


def test_small_sets_are_read_in_process_large_ones_by_workers(
    cell_store: FileStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ds = _dataset(cell_store, tmp_path / "cache")
    assert stream.loader_workers(ds, 2) == 0  # far below IN_PROCESS_IMAGES: no fork per epoch
    in_process = sorted(y for _, y, _ in make_loader(ds, batch_size=8, num_workers=2) for y in y.tolist())
    monkeypatch.setattr(stream, "IN_PROCESS_IMAGES", 1)
    assert stream.loader_workers(ds, 2) == 2
    by_workers = sorted(y for _, y, _ in make_loader(ds, batch_size=8, num_workers=2) for y in y.tolist())
    assert by_workers == in_process and len(by_workers) == len(ds)  # the same images either way


def test_shards_are_downloaded_once(tmp_path: Path) -> None:
    from synscale_trainer.fixtures import write_fake_cell

    store = CountingStore(tmp_path / "store", "synscale")
    write_fake_cell(store, STUDY, per_class=8, shard_size=8)
    cache = tmp_path / "cache"
    for _ in range(2):  # two runs over the same shards
        _epoch(_dataset(store, cache, n=8, real=0), 0)
    assert len(store.downloads) == 10
    assert len(list(cache.rglob("*.tar"))) == 10


def test_cache_rejects_bytes_that_do_not_match_the_sha(store: FileStore, tmp_path: Path) -> None:
    store.put("x/shard.tar", b"not what was promised")
    with pytest.raises(PreconditionFailed, match="sha256"):
        ShardCache(tmp_path / "cache").fetch(store, "x/shard.tar", "ab" * 32)
