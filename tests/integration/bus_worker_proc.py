"""A worker process for the bus contract tests: consumes a topic, records each delivery.

Run as a subprocess so a test can SIGKILL it for real. For every message it writes the
object `out/<value>` to the store (an idempotent write) and appends a line to its
delivery log; with --crash-on VALUE it kills itself with SIGKILL right after writing
that object, before the handler returns (so before the offset is committed).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import time
from pathlib import Path

from synscale.bus.kafka import KafkaBus
from synscale.store.minio import MinioStore


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--topic", required=True)
    p.add_argument("--group", required=True)
    p.add_argument("--bucket", required=True)
    p.add_argument("--log-dir", required=True)
    p.add_argument("--sleep", type=float, default=0.0)
    p.add_argument("--crash-on", default="")
    args = p.parse_args()
    env = os.environ
    store = MinioStore(env["S3_ENDPOINT"], env["S3_ACCESS_KEY"], env["S3_SECRET_KEY"], args.bucket)
    bus = KafkaBus(env["KAFKA_BOOTSTRAP_SERVERS"], session_timeout_ms=3000)
    log_dir = Path(args.log_dir)
    deliveries = open(log_dir / f"deliveries-{os.getpid()}.log", "a", buffering=1)  # noqa: SIM115 - lives as long as the process

    def handle(message) -> None:  # type: ignore[no-untyped-def]
        value = message.value.decode()
        store.put(f"out/{value}", message.value)
        deliveries.write(value + "\n")
        if value == args.crash_on:
            os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(args.sleep)

    worker = bus.subscribe([args.topic], args.group, handle)
    signal.signal(signal.SIGTERM, lambda *_: worker.stop())
    assign_file = log_dir / f"assignment-{os.getpid()}.json"
    while not worker.stopping:
        worker.run(max_messages=5, idle_timeout_s=0.3)
        tmp = assign_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(worker.assignment()))
        tmp.replace(assign_file)
    worker.close()
    bus.close()


if __name__ == "__main__":
    main()
