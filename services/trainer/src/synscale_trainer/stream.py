"""The training input: a store-backed IterableDataset over shards and real-image chunks.

Per epoch: the sources (shards and real chunks) are permuted with a seeded RNG and dealt
out to the loader workers; each worker reads up to `interleave` of its sources at once,
drawing the next image from them in proportion to what they have left (shards hold one
class each, so this is what keeps batches class-mixed), then passes images through a
shuffle buffer. Every random choice is seeded from (seed, epoch, worker), so an epoch's
order is a pure function of those and of the worker count: a resumed run replays it.
"""

from __future__ import annotations

import hashlib
import logging
import random
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from synscale.datasets import fashion_mnist
from synscale.shards import ShardProblem, decode_png, iter_shard
from synscale_trainer.cache import ShardCache
from synscale_trainer.clip_model import caption
from synscale_trainer.plan import RealSource, ShardSource, Source
from synscale_trainer.transforms import Preprocess

log = logging.getLogger(__name__)

Item = tuple[str, Any, int, str]  # uid, raw image (ndarray | PIL), label, text


def item_seed(seed: int, epoch: int, uid: str) -> int:
    """Augmentation seed of one image in one epoch (independent of worker and order)."""
    return int.from_bytes(hashlib.blake2b(f"{seed}:{epoch}:{uid}".encode(), digest_size=8).digest(), "little")


def _sample_index(key: str, meta: dict[str, Any]) -> int:
    if "index" in meta:
        return int(meta["index"])
    return int(key.rsplit("_", 1)[-1])


class StreamingDataset(IterableDataset):  # type: ignore[type-arg]
    def __init__(
        self,
        sources: Sequence[Source],
        cache_root: Path | str,
        preprocess: Preprocess,
        class_names: Sequence[str],
        *,
        seed: int,
        shuffle_buffer: int = 1000,
        interleave: int = 16,
        wait_timeout_s: float = 600.0,
    ) -> None:
        self.sources = list(sources)
        self.cache_root = str(cache_root)
        self.preprocess = preprocess
        self.class_names = list(class_names)
        self.seed = int(seed)
        self.shuffle_buffer = max(1, shuffle_buffer)
        self.interleave = max(1, interleave)
        self.wait_timeout_s = wait_timeout_s
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return sum(s.count for s in self.sources)

    def epoch_order(self, epoch: int) -> list[Source]:
        order = list(range(len(self.sources)))
        random.Random(f"order:{self.seed}:{epoch}").shuffle(order)
        return [self.sources[i] for i in order]

    def worker_sources(self, epoch: int, worker: int, workers: int) -> list[Source]:
        return [s for k, s in enumerate(self.epoch_order(epoch)) if k % workers == worker]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, int, str]]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        epoch = self.epoch
        for uid, raw, label, text in self.stream_items(epoch, worker, workers):
            yield self.prepare(epoch, uid, raw), label, text

    def stream_items(self, epoch: int, stream: int, streams: int) -> Iterator[Item]:
        """Stream `stream` of `streams` in epoch `epoch`, undecoded: a pure function of them.

        The single-process loader reads one stream per worker; the data-parallel trainer
        reads the canonical streams its rank owns (partition.py).
        """
        rng = random.Random(f"stream:{self.seed}:{epoch}:{stream}")
        mine = self.worker_sources(epoch, stream, streams)
        return self._shuffled(self._interleaved(mine, rng), rng)

    def prepare(self, epoch: int, uid: str, raw: Any) -> torch.Tensor:
        """One image as the model sees it, augmented with its (seed, epoch, uid) seed."""
        return self.preprocess(raw, item_seed(self.seed, epoch, uid))

    # -- reading ----------------------------------------------------------------------
    def _interleaved(self, sources: list[Source], rng: random.Random) -> Iterator[Item]:
        pending = list(sources)
        open_: list[tuple[Iterator[Item], list[int]]] = []
        while pending or open_:
            while pending and len(open_) < self.interleave:
                src = pending.pop(0)
                open_.append((self._read(src), [src.count]))
            weights = [max(1, left[0]) for _, left in open_]
            i = rng.choices(range(len(open_)), weights=weights)[0]
            it, left = open_[i]
            try:
                item = next(it)
            except StopIteration:
                open_.pop(i)
                continue
            left[0] -= 1
            yield item

    def _shuffled(self, items: Iterator[Item], rng: random.Random) -> Iterator[Item]:
        buffer: list[Item] = []
        for item in items:
            if len(buffer) < self.shuffle_buffer:
                buffer.append(item)
                continue
            j = rng.randrange(len(buffer))
            buffer[j], item = item, buffer[j]
            yield item
        rng.shuffle(buffer)
        yield from buffer

    def _read(self, src: Source) -> Iterator[Item]:
        if isinstance(src, ShardSource):
            return self._read_shard(src)
        return self._read_real(src)

    def _read_shard(self, src: ShardSource) -> Iterator[Item]:
        path = ShardCache(self.cache_root).wait(src.sha256, self.wait_timeout_s)
        problems: list[ShardProblem] = []
        fallback = caption(self.class_names[src.label])
        seen = 0
        for sample in iter_shard(path.read_bytes(), problems):
            try:
                index = _sample_index(sample.key, sample.meta)
            except ValueError:
                problems.append(ShardProblem(sample.key, "no image index in meta or key"))
                continue
            if not src.lo <= index < src.hi:
                continue
            try:
                image = np.asarray(decode_png(sample.png))
            except ValueError as exc:
                problems.append(ShardProblem(sample.key, str(exc)))
                continue
            seen += 1
            yield f"{src.key}:{index}", image, src.label, str(sample.meta.get("prompt") or fallback)
        if problems or seen != src.count:
            log.warning(
                "shard %s: %d of %d planned images readable; problems: %s",
                src.key,
                seen,
                src.count,
                [(p.key, p.reason) for p in problems[:5]],
            )

    def _read_real(self, src: RealSource) -> Iterator[Item]:
        text = caption(self.class_names[src.label])
        if src.kind == "fashion-mnist":
            images = fashion_mnist.load("train").images
            for ref in src.refs:
                yield f"fm:{ref}", images[int(ref)], src.label, text
            return
        for ref in src.refs:
            with Image.open(str(ref)) as im:
                yield f"file:{ref}", im.convert("RGB"), src.label, text


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)  # decoding workers must not fight the training threads


IN_PROCESS_IMAGES = 8192
"""Epochs of fewer images are read in the training process, without loader workers.

Workers are forked afresh every epoch (each epoch's order is set before the fork), which
costs about a second with a study's memory mapped in; a 64-image-per-class set decodes in
a few tens of milliseconds. A scaling study's small sizes run dozens of such epochs, so
below this size forking cost more than the whole decode (docs/analysis.md, "Sizing the
demo"). The worker count is part of the order, so the rule is a pure function of the
set's size: a resumed run makes the same choice.
"""


def loader_workers(dataset: StreamingDataset, num_workers: int) -> int:
    """The workers an epoch of `dataset` uses: none for small sets (`IN_PROCESS_IMAGES`)."""
    return 0 if len(dataset) < IN_PROCESS_IMAGES else num_workers


def make_loader(
    dataset: StreamingDataset, batch_size: int, num_workers: int, *, pin_memory: bool = False
) -> DataLoader:  # type: ignore[type-arg]
    num_workers = loader_workers(dataset, num_workers)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        num_workers=num_workers,
        pin_memory=pin_memory,
        worker_init_fn=_worker_init if num_workers else None,
        prefetch_factor=4 if num_workers else None,
        persistent_workers=False,
    )
