"""Distributed runtime benchmarks over real Kafka; prints one JSON object.

Orchestration scaling (this part): the same set of GenerationJob messages is consumed
by 1, 2, 4 and 8 worker *processes* in one consumer group, each running the shared
at-least-once loop (KafkaBus worker: poll, handle, flush, commit) with a stand-in model
that sleeps a fixed time per batch. Since the stand-in costs no CPU, any shortfall from
linear speed-up is the orchestration's: partition assignment, fetch latency, commits.
The baseline is the 1-process run in the same invocation; efficiency(n) =
throughput(n) / (n x throughput(1)); target >= 0.85 at 8 processes.

Each level uses a fresh topic (P partitions, jobs spread evenly by key) and waits until
the group has settled (every partition assigned, every member holding some) before it
publishes, so the timing covers distribution and handling, not the one-off group join.

The other half of the issue's benchmark (one generation job through Kafka + MinIO with
the real generator process against the embedded runtime) needs the generator service
and is reported as pending until it exists.

    python bench/distributed.py [--workers 1,2,4,8] [--jobs 128] [--batch-seconds 0.25]
    (needs KAFKA_BOOTSTRAP_SERVERS: `make bench`, or `source .infra/env`)
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, Any

from kafka.partitioner.default import murmur2

from synscale.bus.kafka import KafkaBus

HERE = Path(__file__).resolve()


# -- worker process ---------------------------------------------------------------------------

def worker_main(args: argparse.Namespace) -> int:
    """One consumer-group member: stand-in handler, progress as JSON lines on stdout."""
    from synscale.bus.base import Message
    from synscale.v1 import generator_pb2

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format=f"worker {os.getpid()} %(levelname)s %(name)s: %(message)s")
    logging.getLogger("kafka.net").setLevel(logging.ERROR)  # event-loop lag notes on a busy CPU

    out_lock = threading.Lock()

    def emit(**doc: Any) -> None:
        with out_lock:
            sys.stdout.write(json.dumps(doc) + "\n")
            sys.stdout.flush()

    def handle(message: Message) -> None:
        job = generator_pb2.GenerationJob.FromString(message.value)  # a real job, parsed
        start = time.time()
        time.sleep(args.batch_seconds)  # the stand-in model: fixed time per batch
        emit(event="done", start=start, end=time.time(), seed=job.job.seed_start)

    bus = KafkaBus(args.bootstrap, client_id=f"bench-{os.getpid()}", session_timeout_ms=6000)
    worker = bus.subscribe([args.topic], args.group, handle)
    stop = threading.Event()

    def on_term(_signum: int, _frame: FrameType | None) -> None:
        stop.set()
        worker.stop()

    signal.signal(signal.SIGTERM, on_term)
    last: int | None = None
    try:
        while not stop.is_set():
            worker.run(idle_timeout_s=0.3)
            assigned = len(worker.assignment())  # type: ignore[attr-defined]
            if assigned != last:
                emit(event="assignment", partitions=assigned)
                last = assigned
    finally:
        worker.close()
        bus.close()
    return 0


# -- orchestrator -----------------------------------------------------------------------------

@dataclass
class Member:
    proc: subprocess.Popen[str]
    partitions: int = -1
    done: list[tuple[float, float]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def read(self, stream: IO[str]) -> None:
        for line in stream:
            try:
                doc = json.loads(line)
            except json.JSONDecodeError:
                continue
            with self.lock:
                if doc.get("event") == "assignment":
                    self.partitions = int(doc["partitions"])
                elif doc.get("event") == "done":
                    self.done.append((float(doc["start"]), float(doc["end"])))


def balanced_keys(jobs: int, partitions: int) -> list[bytes]:
    """Keys that put exactly jobs/partitions messages on each partition (Kafka's murmur2)."""
    per = {p: 0 for p in range(partitions)}
    want = jobs // partitions
    keys: list[bytes] = []
    i = 0
    while len(keys) < jobs:
        key = f"job-{i}".encode()
        p = (murmur2(key) & 0x7FFFFFFF) % partitions
        if per[p] < want:
            per[p] += 1
            keys.append(key)
        i += 1
    return keys


def job_payload(i: int) -> bytes:
    from synscale.v1 import common_pb2, generator_pb2

    cell = common_pb2.CellId(generator="standin", cfg=2.0, strategy="classname")
    job = common_pb2.JobIdentity(study_id="bench", cell=cell, class_id=f"c{i % 10}",
                                 seed_start=i * 64, seed_count=64)
    return generator_pb2.GenerationJob(job=job, class_index=i % 10, bucket="bench",
                                       shard_size=64).SerializeToString()


def run_level(bootstrap: str, n: int, jobs: int, partitions: int, batch_s: float,
              settle_timeout_s: float = 90.0) -> dict[str, Any]:
    """Time `jobs` stand-in batches through a group of `n` worker processes."""
    run_id = uuid.uuid4().hex[:8]
    topic, group = f"bench-dist-{run_id}-n{n}", f"bench-dist-{run_id}"
    bus = KafkaBus(bootstrap, client_id="bench-orchestrator")
    bus.ensure_topic(topic, partitions)
    members: list[Member] = []
    try:
        for _ in range(n):
            proc = subprocess.Popen(
                [sys.executable, str(HERE), "worker", "--bootstrap", bootstrap, "--topic", topic,
                 "--group", group, "--batch-seconds", str(batch_s)],
                stdout=subprocess.PIPE, text=True)
            member = Member(proc)
            assert proc.stdout is not None
            threading.Thread(target=member.read, args=(proc.stdout,), daemon=True).start()
            members.append(member)
        _wait_settled(members, partitions, settle_timeout_s)
        keys = balanced_keys(jobs, partitions)
        t0 = time.time()
        for i, key in enumerate(keys):
            bus.publish(topic, job_payload(i), key=key)
        bus.flush()
        deadline = time.monotonic() + jobs * batch_s + 120
        while sum(len(m.done) for m in members) < jobs:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{n} workers handled {sum(len(m.done) for m in members)}"
                                   f" of {jobs} jobs before the deadline")
            time.sleep(0.02)
        end = max(e for m in members for _, e in m.done)
        makespan = end - t0
        handled = [len(m.done) for m in members]
    finally:
        for m in members:
            if m.proc.poll() is None:
                m.proc.send_signal(signal.SIGTERM)
        for m in members:
            try:
                m.proc.wait(30)
            except subprocess.TimeoutExpired:
                m.proc.kill()
        _delete_topic(bus, topic)
        bus.close()
    return {
        "workers": n,
        "makespan_s": round(makespan, 3),
        "jobs_per_s": round(jobs / makespan, 3),
        "ideal_makespan_s": round(jobs * batch_s / n, 3),
        "ideal_efficiency": round(jobs * batch_s / n / makespan, 3),
        "jobs_per_worker": handled,
    }


def _wait_settled(members: list[Member], partitions: int, timeout_s: float) -> None:
    """Until every partition is assigned and each member holds some, stable for 1 s."""
    deadline = time.monotonic() + timeout_s
    stable_since: float | None = None
    while time.monotonic() < deadline:
        for m in members:
            if m.proc.poll() is not None:
                raise RuntimeError(f"worker process exited early with {m.proc.returncode}")
        counts = [m.partitions for m in members]
        if sum(counts) == partitions and min(counts) > 0:
            stable_since = stable_since or time.monotonic()
            if time.monotonic() - stable_since >= 1.0:
                return
        else:
            stable_since = None
        time.sleep(0.05)
    raise RuntimeError(f"consumer group did not settle within {timeout_s}s: "
                       f"{[m.partitions for m in members]}")


def _delete_topic(bus: KafkaBus, topic: str) -> None:
    try:
        bus._admin.delete_topics([topic])
    except Exception as exc:  # cleanup is best effort
        print(f"warning: could not delete {topic}: {exc}", file=sys.stderr)


def orchestration_scaling(bootstrap: str, levels: list[int], jobs: int, partitions: int,
                          batch_s: float) -> dict[str, Any]:
    results = [run_level(bootstrap, n, jobs, partitions, batch_s) for n in levels]
    base = next((r for r in results if r["workers"] == 1), None)
    for r in results:
        if base is not None:
            r["speedup"] = round(r["jobs_per_s"] / base["jobs_per_s"], 3)
            r["efficiency"] = round(r["speedup"] / r["workers"], 3)
    top = max(results, key=lambda r: r["workers"])
    return {
        "stand_in": "sleep per batch (GenerationJob parsed, no compute)",
        "batch_seconds": batch_s,
        "jobs": jobs,
        "partitions": partitions,
        "baseline": "1 worker process, same run" if base else "none (no 1-worker level)",
        "levels": results,
        f"efficiency_at_{top['workers']}": top.get("efficiency"),
        "target_efficiency": 0.85,
        "meets_target": top.get("efficiency") is not None and top["efficiency"] >= 0.85,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="mode")
    w = sub.add_parser("worker", help=argparse.SUPPRESS)
    w.add_argument("--bootstrap", required=True)
    w.add_argument("--topic", required=True)
    w.add_argument("--group", required=True)
    w.add_argument("--batch-seconds", type=float, required=True)
    parser.add_argument("--workers", default="1,2,4,8", help="process counts, comma-separated")
    parser.add_argument("--jobs", type=int, default=128, help="generation jobs per level")
    parser.add_argument("--partitions", type=int, default=16)
    parser.add_argument("--batch-seconds", type=float, default=0.25,
                        help="stand-in model time per batch")
    args = parser.parse_args(argv)
    if args.mode == "worker":
        return worker_main(args)

    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "")
    if not bootstrap:
        print("bench/distributed.py needs KAFKA_BOOTSTRAP_SERVERS (run `make bench`, or "
              "`source .infra/env` after `make infra-up`)", file=sys.stderr)
        return 2
    levels = [int(x) for x in args.workers.split(",") if x.strip()]
    if any(n < 1 or n > args.partitions for n in levels):
        print(f"--workers must be between 1 and --partitions ({args.partitions})", file=sys.stderr)
        return 2
    if args.jobs % args.partitions:
        print("--jobs must be a multiple of --partitions (even load per partition)",
              file=sys.stderr)
        return 2
    report = {
        "bench": "distributed",
        "kafka": bootstrap,
        "orchestration_scaling": orchestration_scaling(
            bootstrap, levels, args.jobs, args.partitions, args.batch_seconds),
        "generation_vs_embedded": {
            "status": "pending: needs the generator service (one job through Kafka + MinIO "
                      "with one generator process vs the embedded runtime, target >= 0.9x)",
        },
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
