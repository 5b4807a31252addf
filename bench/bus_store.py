"""Bus and store throughput: Kafka + MinIO against Memory + File in the same run.

Prints one JSON object. Events are real ShardReady protobufs (the claim-check messages
the services exchange); shards are real WebDataset tars of small PNGs. Needs
KAFKA_BOOTSTRAP_SERVERS and S3_* (`make bench` or `source .infra/env`).

    python bench/bus_store.py [--events 10000] [--shards 1000] [--images-per-shard 256]
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

from synscale import layout
from synscale.bus.base import Bus
from synscale.bus.memory import MemoryBus
from synscale.shards import Sample, encode_png, write_shard
from synscale.store.base import ObjectStore
from synscale.store.file import FileStore
from synscale.v1 import common_pb2, generator_pb2


def _event(i: int) -> bytes:
    cell = common_pb2.CellId(generator="embedded", cfg=2.0, strategy="classname")
    job = common_pb2.JobIdentity(study_id="bench", cell=cell, class_id=f"c{i % 10}",
                                 seed_start=i * 64, seed_count=64)
    key = layout.shard_key("bench", "embedded", 2.0, "classname", f"c{i % 10}", i * 64, 64)
    ref = common_pb2.ShardRef(bucket="bench", key=key, sha256="0" * 64, count=64, size_bytes=1 << 16,
                              job=job, shard_index=i)
    return generator_pb2.ShardReady(shard=ref).SerializeToString()


def bench_bus(bus: Bus, n: int) -> dict[str, float]:
    topic = f"bench-{uuid.uuid4().hex[:8]}"
    bus.ensure_topic(topic, 6)
    payloads = [_event(i) for i in range(n)]
    t0 = time.perf_counter()
    for i, p in enumerate(payloads):
        bus.publish(topic, p, key=f"k{i}")
    bus.flush()
    t_pub = time.perf_counter() - t0
    count = 0

    def handle(message: object) -> None:
        nonlocal count
        count += 1

    worker = bus.subscribe([topic], f"bench-{uuid.uuid4().hex[:8]}", handle)
    t0 = time.perf_counter()
    worker.run(max_messages=n, idle_timeout_s=30)
    t_con = time.perf_counter() - t0
    worker.close()
    assert count == n, f"consumed {count} of {n}"
    return {"events": n, "publish_events_per_s": n / t_pub, "consume_events_per_s": n / t_con}


def bench_store(store: ObjectStore, shards: int, per_shard: int) -> dict[str, float]:
    rng = np.random.default_rng(0)
    pngs = [encode_png(rng.integers(0, 255, (32, 32), dtype=np.uint8)) for _ in range(per_shard)]
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    total_bytes = 0
    t0 = time.perf_counter()
    for s in range(shards):
        samples = [Sample(f"c_{s * per_shard + i:09d}", png, {"index": s * per_shard + i})
                   for i, png in enumerate(pngs)]
        data = write_shard(samples)
        total_bytes += len(data)
        store.put(f"{prefix}/shard-{s:06d}.tar", data)
    elapsed = time.perf_counter() - t0
    return {"shards": shards, "images_per_shard": per_shard, "shards_per_s": shards / elapsed,
            "images_per_s": shards * per_shard / elapsed, "mb_per_s": total_bytes / elapsed / 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--shards", type=int, default=1_000)
    parser.add_argument("--images-per-shard", type=int, default=256)
    args = parser.parse_args()
    env = os.environ
    missing = [k for k in ("KAFKA_BOOTSTRAP_SERVERS", "S3_ENDPOINT", "S3_ACCESS_KEY", "S3_SECRET_KEY")
               if not env.get(k)]
    if missing:
        raise SystemExit(f"set {', '.join(missing)} (run via `make bench` or `source .infra/env`)")
    from synscale.bus.kafka import KafkaBus
    from synscale.store.minio import MinioStore

    kafka = KafkaBus(env["KAFKA_BOOTSTRAP_SERVERS"])
    result: dict[str, object] = {"benchmark": "bus_store"}
    mem = bench_bus(MemoryBus(), args.events)
    kaf = bench_bus(kafka, args.events)
    kafka.close()
    result["bus"] = {
        "memory": mem, "kafka": kaf,
        "kafka_vs_memory_publish": kaf["publish_events_per_s"] / mem["publish_events_per_s"],
        "kafka_vs_memory_consume": kaf["consume_events_per_s"] / mem["consume_events_per_s"],
    }
    with tempfile.TemporaryDirectory() as tmp:
        fil = bench_store(FileStore(Path(tmp), "bench"), args.shards, args.images_per_shard)
    bucket = f"bench-{uuid.uuid4().hex[:8]}"
    minio = MinioStore(env["S3_ENDPOINT"], env["S3_ACCESS_KEY"], env["S3_SECRET_KEY"], bucket)
    mio = bench_store(minio, args.shards, args.images_per_shard)
    for obj in minio.list(""):
        minio.delete(obj.key)
    minio.client.remove_bucket(bucket)
    result["store"] = {"file": fil, "minio": mio, "minio_vs_file": mio["shards_per_s"] / fil["shards_per_s"]}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
