"""Stand-in synthetic cells made from real Fashion-MNIST images, for tests and benchmarks.

They follow the generator's conventions exactly (layout.shard_key paths, ids.sample_key
member names, 32x32 mode "L" PNGs, the agreed meta keys) so that the trainer can be
tested and benchmarked without depending on the generator service.
"""

from __future__ import annotations

import numpy as np

from synscale import ids, layout
from synscale.datasets import fashion_mnist
from synscale.shards import Sample, encode_png, write_shard
from synscale.store.base import ObjectStore


def write_fake_cell(
    store: ObjectStore,
    study_id: str,
    *,
    generator: str = "fake",
    cfg: float = 2.0,
    strategy: str = "classname",
    per_class: int = 20,
    shard_size: int = 10,
    offset: int = 0,
    classes: tuple[str, ...] | None = None,
    source: str = "test",
) -> list[str]:
    """Write `per_class` images per class in shards of `shard_size`; returns the shard keys.

    Image i of class c is the (offset + i)-th Fashion-MNIST image of that class in split
    `source`. The default, the test split, never overlaps the real training images the
    trainer mixes in (right for unit tests); for figures that are evaluated on the test
    split use source="train" with an offset beyond the real images in use.
    """
    split = fashion_mnist.load(source)
    by_class = split.per_class_indices()
    keys = []
    wanted = classes or fashion_mnist.CLASS_IDS
    for class_index, (class_id, name) in enumerate(fashion_mnist.CLASSES):
        if class_id not in wanted:
            continue
        pool = by_class[class_index]
        for start in range(0, per_class, shard_size):
            count = min(shard_size, per_class - start)
            samples = []
            for index in range(start, start + count):
                image = np.asarray(split.images[pool[(offset + index) % len(pool)]])
                meta = {
                    "study_id": study_id,
                    "generator": generator,
                    "cfg": cfg,
                    "strategy": strategy,
                    "class_id": class_id,
                    "class_index": class_index,
                    "index": index,
                    "seed": ids.image_seed(study_id, generator, strategy, class_id, index),
                    "prompt": f"a photo of a {name}, number {index}",
                }
                samples.append(Sample(ids.sample_key(class_id, index), encode_png(image), meta))
            key = layout.shard_key(study_id, generator, cfg, strategy, class_id, start, count)
            store.put(key, write_shard(samples), content_type="application/x-tar")
            keys.append(key)
    return keys
