"""Training-input throughput: shards streamed from MinIO against the same images as local files.

Prints one JSON object. Both sides decode the same PNGs and apply the same training
augmentation (the embedded recipe's pad-crop-flip), with the same loader workers and
batch size; only the source differs:

- minio_cold: the trainer's real path — plan from the MinIO listing, background prefetch
  into an empty shard cache, StreamingDataset (interleave + shuffle buffer) over it;
- minio_warm: the same after the cache is filled (every later epoch and run);
- local_files: one PNG file per image on local disk, a map-style Dataset, shuffle=True.

Rounds alternate the sides so a busy host slows both alike; the best round of each is
reported. Target: minio_cold >= 0.8 x local_files. Needs S3_* (and KAFKA_* for
`make bench`): `source .infra/env`.

    python bench/train_input.py [--per-class 1000] [--shard-size 250] [--workers 2] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from synscale.datasets import fashion_mnist
from synscale.store.minio import MinioStore
from synscale_trainer import classes
from synscale_trainer.cache import Prefetcher, ShardCache
from synscale_trainer.fixtures import write_fake_cell
from synscale_trainer.models import arch_info
from synscale_trainer.plan import Cell, ShardSource, plan_training_set
from synscale_trainer.stream import StreamingDataset, make_loader
from synscale_trainer.transforms import Preprocess

STUDY = "bench-train-input"
CELL = Cell("bench", 2.0, "classname")


class LocalFiles(Dataset):  # type: ignore[type-arg]
    def __init__(self, items: list[tuple[Path, int]], pre: Preprocess) -> None:
        self.items, self.pre = items, pre

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        path, label = self.items[i]
        with Image.open(path) as im:
            return self.pre(np.asarray(im), seed=i), label


def write_local(root: Path, per_class: int, offset: int) -> list[tuple[Path, int]]:
    """The cell's images as PNG files, <root>/<class>/<index>.png (same source images)."""
    split = fashion_mnist.load("train")
    items = []
    for label, pool in enumerate(split.per_class_indices()):
        folder = root / fashion_mnist.CLASS_IDS[label]
        folder.mkdir(parents=True)
        for index in range(per_class):
            path = folder / f"{index:06d}.png"
            Image.fromarray(np.asarray(split.images[pool[(offset + index) % len(pool)]])).save(path)
            items.append((path, label))
    return items


def drain(loader: DataLoader) -> int:  # type: ignore[type-arg]
    return sum(int(batch[0].shape[0]) for batch in loader)


def run_minio(
    store: MinioStore,
    cache_dir: Path,
    pre: Preprocess,
    per_class: int,
    args: argparse.Namespace,
) -> tuple[float, int]:
    t0 = time.perf_counter()
    plan = plan_training_set(
        store,
        study_id=STUDY,
        cells=[CELL],
        classes=classes.fashion(),
        n_per_class=per_class,
        real_per_class=0,
    )
    prefetch = Prefetcher(store, ShardCache(cache_dir))
    ds = StreamingDataset(plan.sources, cache_dir, pre, classes.fashion().names, seed=0, shuffle_buffer=2000)
    prefetch.submit([(s.key, s.sha256) for s in ds.epoch_order(0) if isinstance(s, ShardSource)])
    n = drain(make_loader(ds, args.batch_size, args.workers))
    prefetch.close()
    return n / (time.perf_counter() - t0), n


def run_local(items: list[tuple[Path, int]], pre: Preprocess, args: argparse.Namespace) -> tuple[float, int]:
    t0 = time.perf_counter()
    loader = DataLoader(
        LocalFiles(items, pre),
        batch_size=args.batch_size,
        shuffle=True,
        num_workers=args.workers,
        prefetch_factor=4 if args.workers else None,
    )
    n = drain(loader)
    return n / (time.perf_counter() - t0), n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--per-class", type=int, default=1000)
    parser.add_argument("--shard-size", type=int, default=250)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    for var in ("S3_ENDPOINT", "S3_ACCESS_KEY", "S3_SECRET_KEY"):
        if not os.environ.get(var):
            raise SystemExit(f"{var} is not set: run `source .infra/env` (or `make bench`)")
    torch.set_num_threads(1)
    store = MinioStore(
        os.environ["S3_ENDPOINT"],
        os.environ["S3_ACCESS_KEY"],
        os.environ["S3_SECRET_KEY"],
        f"bench-train-{uuid.uuid4().hex[:8]}",
    )
    offset = 3000
    pre = arch_info("embedded-cnn").preprocess(augment=True)
    try:
        write_fake_cell(
            store,
            STUDY,
            generator=CELL.generator,
            cfg=CELL.cfg,
            strategy=CELL.strategy,
            per_class=args.per_class,
            shard_size=args.shard_size,
            offset=offset,
            source="train",
        )
        with tempfile.TemporaryDirectory(prefix="bench-train-input-") as tmp:
            items = write_local(Path(tmp) / "files", args.per_class, offset)
            cold, warm, local = [], [], []
            for r in range(args.rounds):
                cache = Path(tmp) / f"cache-{r}"
                local.append(run_local(items, pre, args)[0])
                cold.append(run_minio(store, cache, pre, args.per_class, args)[0])
                warm.append(run_minio(store, cache, pre, args.per_class, args)[0])
    finally:
        for info in list(store.list("")):
            store.delete(info.key)
        store.client.remove_bucket(store.bucket)
    best_cold, best_warm, best_local = max(cold), max(warm), max(local)
    print(
        json.dumps(
            {
                "bench": "train_input",
                "images": 10 * args.per_class,
                "shards": 10 * -(-args.per_class // args.shard_size),
                "workers": args.workers,
                "batch_size": args.batch_size,
                "rounds": args.rounds,
                "minio_cold_images_per_s": round(best_cold, 1),
                "minio_warm_images_per_s": round(best_warm, 1),
                "local_files_images_per_s": round(best_local, 1),
                "ratio_cold_vs_local": round(best_cold / best_local, 3),
                "ratio_warm_vs_local": round(best_warm / best_local, 3),
                "all_rounds": {
                    "minio_cold": [round(x, 1) for x in cold],
                    "minio_warm": [round(x, 1) for x in warm],
                    "local_files": [round(x, 1) for x in local],
                },
                "target_ratio": 0.8,
                "meets_target": best_cold >= 0.8 * best_local,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
