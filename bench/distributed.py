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

Generation vs embedded (the other half): the same generation job (default 10 classes x
64 images of the embedded T2I model, 10 DDIM steps, CFG 2, batch 64; one GenerationJob
and one shard per class) handled by the same handler, `synscale_generator.worker`'s
GenerationHandler, in the two runtimes of one invocation:
- embedded: EmbeddedRunner (MemoryBus + FileStore) in this process, pumped until quiescent;
- distributed: one `python -m synscale_generator` process (run_service, configured by
  environment only) over Kafka + MinIO; the clock stops when this process has read the
  last ShardReady from Kafka.
Both load the model on an untimed warm-up job first; then the runtimes alternate for
--rounds rounds (a fresh study id each round, the same one in both runtimes) and the
best round of each counts, which damps the noise of a shared CPU. The shards of both
runtimes are compared byte for byte. ratio = distributed / embedded images/s; target
>= 0.9. Uses the committed embedded weights (or --model-path); without them, the same
architecture with random weights (the work per image is the same).

    python bench/distributed.py [--parts scaling,generation] [--workers 1,2,4,8] [--jobs 128]
        [--batch-seconds 0.25] [--classes 10] [--per-class 64] [--steps 10] [--rounds 2]
    (needs KAFKA_BOOTSTRAP_SERVERS and, for the generation half, S3_ENDPOINT / S3_ACCESS_KEY /
     S3_SECRET_KEY: `make bench`, or `source .infra/env`)
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

from synscale import layout
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


# -- generation: one generator process over Kafka + MinIO vs the embedded runtime --------------

TEMPLATES = ("{}", "a photo of a {}", "a {} on a white background", "a picture of the {}")


@dataclass(frozen=True)
class GenJob:
    """One generation workload; `jobs()` cuts it as the prompter does (a job = a shard)."""

    classes: int
    per_class: int
    steps: int
    cfg: float
    batch_size: int
    model_path: str  # "" = the committed embedded weights

    @property
    def images(self) -> int:
        return self.classes * self.per_class

    def jobs(self, study_id: str, bucket: str, classes: int | None = None) -> list[tuple[str, bytes]]:
        from synscale.datasets.fashion_mnist import CLASSES
        from synscale.v1 import study_pb2
        from synscale_generator.output import make_job

        spec = study_pb2.GeneratorSpec(
            name="embedded", backend="embedded", model_path=self.model_path, resolution=32,
            steps=self.steps, scheduler="ddim", dtype="float32", batch_size=self.batch_size,
            cfg_grid=[self.cfg], options={"eta": "1.0"})
        out = []
        for index, (class_id, name) in enumerate(CLASSES[:classes or self.classes]):
            texts = [TEMPLATES[i % len(TEMPLATES)].format(name) for i in range(self.per_class)]
            job = make_job(study_id, spec, self.cfg, "classname", class_id, texts, class_index=index,
                           bucket=bucket, shard_size=self.per_class)
            out.append((f"{study_id}/{class_id}", job.SerializeToString()))
        return out


def shard_digests(store: Any, study_id: str) -> dict[str, str]:
    """{shard key: sha256} of one study's images."""

    out = {}
    for info in store.list(f"{layout.study_prefix(study_id)}/images/"):
        stat = store.stat(info.key)
        out[info.key] = stat.sha256 if stat is not None else ""
    return out


class EmbeddedSide:
    """The embedded runtime with the generator installed: MemoryBus + FileStore, pumped."""

    def __init__(self, data_dir: Path, bucket: str) -> None:
        from synscale.embedded import EmbeddedRunner
        from synscale_generator.worker import subscriptions

        self.runner = EmbeddedRunner(data_dir, {"generator": subscriptions}, bucket=bucket)
        self.store = self.runner.store

    def run(self, jobs: list[tuple[str, bytes]]) -> float:
        start = time.perf_counter()
        for key, value in jobs:
            self.runner.ctx.publish("generation-jobs", value, key=key)
        result = self.runner.pump()
        seconds = time.perf_counter() - start
        letters = self.runner.dead_letters()
        if letters or result.handled != len(jobs):
            raise RuntimeError(f"embedded generator handled {result.handled} of {len(jobs)} jobs; "
                               f"dead letters: {letters[:3]}")
        return seconds

    def close(self) -> None:
        self.runner.close()


class DistributedSide:
    """`python -m synscale_generator` on Kafka + MinIO; this process publishes jobs and reads
    the ShardReady events back (the clock stops at the last one)."""

    def __init__(self, env: dict[str, str], run_id: str, log_path: Path) -> None:
        from synscale.config import Topics
        from synscale.grpc_server import check_health
        from synscale.store.minio import MinioStore
        from synscale.v1 import generator_pb2

        self.bucket = f"bench-gen-{run_id}"
        self.topics = Topics(prefix=f"bench-gen-{run_id}", default_partitions=3)
        self.bus = KafkaBus(env["KAFKA_BOOTSTRAP_SERVERS"], client_id="bench-gen",
                            session_timeout_ms=6000)
        self.topics.ensure_all(self.bus)
        self.store = MinioStore(env["S3_ENDPOINT"], env["S3_ACCESS_KEY"], env["S3_SECRET_KEY"],
                                self.bucket, secure=env.get("S3_SECURE", "").lower() in {"1", "true"})
        port = _free_port()
        proc_env = {**os.environ, **env, "SYNSCALE_RUNTIME": "distributed", "S3_BUCKET": self.bucket,
                    "SYNSCALE_TOPIC_PREFIX": self.topics.prefix, "SYNSCALE_PARTITIONS": "3",
                    "SYNSCALE_GRPC_PORT": str(port), "SYNSCALE_METRICS_PORT": "off",
                    "SYNSCALE_LAG_INTERVAL_S": "0", "HF_HUB_OFFLINE": "1"}
        self.log_path = log_path
        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "synscale_generator"], env=proc_env,
                                         stdout=log, stderr=subprocess.STDOUT)
        self.arrivals: list[tuple[float, Any]] = []
        self._lock = threading.Lock()

        def on_ready(message: Any) -> None:
            ready = generator_pb2.ShardReady.FromString(message.value)
            with self._lock:
                self.arrivals.append((time.perf_counter(), ready))

        self.reader = self.bus.subscribe([self.topics.name("shards-ready")], f"bench-reader-{run_id}",
                                         on_ready)
        self._reader_thread = threading.Thread(
            target=self.reader.run, kwargs={"poll_timeout_s": 0.05}, daemon=True)
        self._reader_thread.start()
        deadline = time.monotonic() + 180
        while not (check_health(f"127.0.0.1:{port}", timeout_s=2) and self.reader.assignment()):  # type: ignore[attr-defined]
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the generator process did not become ready:\n{self.log_tail()}")
            time.sleep(0.5)

    def run(self, jobs: list[tuple[str, bytes]], study_id: str, timeout_s: float = 900) -> float:
        start = time.perf_counter()
        for key, value in jobs:
            self.bus.publish(self.topics.name("generation-jobs"), value, key=key)
        self.bus.flush()
        deadline = time.monotonic() + timeout_s
        while True:
            with self._lock:
                landed = [t for t, r in self.arrivals if r.shard.job.study_id == study_id]
            if len(landed) >= len(jobs):
                return max(landed) - start
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{len(landed)} of {len(jobs)} shards announced:\n{self.log_tail()}")
            time.sleep(0.02)

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:] if self.log_path.exists() else ""

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.reader.stop()
        self._reader_thread.join(10)
        self.reader.close()
        for logical in ("generation-jobs", "shards-ready"):
            _delete_topic(self.bus, self.topics.name(logical))
        for info in list(self.store.list("")):
            self.store.delete(info.key)
        self.bus.close()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bench_model(requested: str, workdir: Path) -> tuple[str, str]:
    """(model_path for the jobs, label): the given or committed weights, else random ones."""
    from synscale_generator.embedded.weights import DEFAULT_WEIGHTS

    if requested:
        return requested, f"embedded, weights {requested}"
    if DEFAULT_WEIGHTS.is_file():
        return "", f"embedded, committed weights {DEFAULT_WEIGHTS.name}"
    import torch

    from synscale_generator.embedded.model import ModelConfig, ScheduleConfig, build_unet
    from synscale_generator.embedded.weights import save_weights

    torch.manual_seed(0)
    path = workdir / "random_embedded_t2i.safetensors"
    save_weights(build_unet(ModelConfig()), path, ModelConfig(), ScheduleConfig(), {"weights": "random"})
    return str(path), "embedded architecture, random weights (no committed weights found)"


def generation_vs_embedded(env: dict[str, str], classes: int, per_class: int, steps: int,
                           cfg: float, batch_size: int, rounds: int, model_path: str) -> dict[str, Any]:
    """Same job, same handler, both runtimes alternating; best round of each."""
    import tempfile

    run_id = uuid.uuid4().hex[:8]
    with tempfile.TemporaryDirectory(prefix="bench-dist-") as tmp:
        work = Path(tmp)
        path, label = bench_model(model_path, work)
        job = GenJob(classes, per_class, steps, cfg, batch_size, path)
        distributed = DistributedSide(env, run_id, work / "generator.log")
        embedded = EmbeddedSide(work / "embedded", distributed.bucket)
        try:
            warm = f"bench-{run_id}-warmup"
            embedded.run(job.jobs(warm, distributed.bucket, classes=1))
            distributed.run(job.jobs(warm, distributed.bucket, classes=1), warm)
            times: dict[str, list[float]] = {"embedded": [], "distributed": []}
            identical, compared = True, 0
            for r in range(rounds):
                study = f"bench-{run_id}-r{r}"
                jobs = job.jobs(study, distributed.bucket)
                times["embedded"].append(embedded.run(jobs))
                times["distributed"].append(distributed.run(jobs, study))
                ours, theirs = shard_digests(embedded.store, study), shard_digests(distributed.store, study)
                identical = identical and ours == theirs and len(ours) == classes
                compared += len(ours)
        finally:
            distributed.close()
            embedded.close()
    best = {side: job.images / min(seconds) for side, seconds in times.items()}
    ratio = best["distributed"] / best["embedded"]
    return {
        "job": {"classes": classes, "images_per_class": per_class, "images": job.images,
                "steps": steps, "cfg": cfg, "batch_size": batch_size, "shards": classes,
                "model": label},
        "rounds": rounds,
        "embedded": {"runtime": "EmbeddedRunner: MemoryBus + FileStore, this process",
                     "seconds": [round(t, 3) for t in times["embedded"]],
                     "images_per_s": round(best["embedded"], 2)},
        "distributed": {"runtime": "1 `python -m synscale_generator` process, Kafka + MinIO",
                        "seconds": [round(t, 3) for t in times["distributed"]],
                        "images_per_s": round(best["distributed"], 2)},
        "baseline": "embedded runtime, same job, same run (best of the rounds on each side)",
        "ratio": round(ratio, 3),
        "target_ratio": 0.9,
        "meets_target": ratio >= 0.9,
        "identical_shards": identical,
        "shards_compared": compared,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="mode")
    w = sub.add_parser("worker", help=argparse.SUPPRESS)
    w.add_argument("--bootstrap", required=True)
    w.add_argument("--topic", required=True)
    w.add_argument("--group", required=True)
    w.add_argument("--batch-seconds", type=float, required=True)
    parser.add_argument("--parts", default="scaling,generation",
                        help="which halves to run: scaling, generation (comma-separated)")
    parser.add_argument("--workers", default="1,2,4,8", help="process counts, comma-separated")
    parser.add_argument("--jobs", type=int, default=128, help="generation jobs per level")
    parser.add_argument("--partitions", type=int, default=16)
    parser.add_argument("--batch-seconds", type=float, default=0.25,
                        help="stand-in model time per batch")
    g = parser.add_argument_group("generation vs embedded")
    g.add_argument("--classes", type=int, default=10, help="classes (one job and shard each), <= 10")
    g.add_argument("--per-class", type=int, default=64, help="images per class")
    g.add_argument("--steps", type=int, default=10, help="sampling steps")
    g.add_argument("--cfg", type=float, default=2.0)
    g.add_argument("--gen-batch-size", type=int, default=64)
    g.add_argument("--rounds", type=int, default=2, help="alternating timed rounds per runtime")
    g.add_argument("--model-path", default="", help="embedded weights (default: the committed ones)")
    args = parser.parse_args(argv)
    if args.mode == "worker":
        return worker_main(args)

    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    if not parts or parts - {"scaling", "generation"}:
        print("--parts takes scaling and/or generation", file=sys.stderr)
        return 2
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
    if not 1 <= args.classes <= 10 or args.per_class < 1 or args.rounds < 1:
        print("--classes must be in 1..10, --per-class and --rounds >= 1", file=sys.stderr)
        return 2
    report: dict[str, Any] = {"bench": "distributed", "kafka": bootstrap}
    if "scaling" in parts:
        report["orchestration_scaling"] = orchestration_scaling(
            bootstrap, levels, args.jobs, args.partitions, args.batch_seconds)
    if "generation" in parts:
        s3 = ("S3_ENDPOINT", "S3_ACCESS_KEY", "S3_SECRET_KEY")
        if not all(os.environ.get(k) for k in s3):
            report["generation_vs_embedded"] = {
                "status": f"skipped: needs {', '.join(s3)} (MinIO) as well as Kafka"}
        else:
            env = {k: os.environ[k] for k in (*s3, "KAFKA_BOOTSTRAP_SERVERS")}
            env["S3_SECURE"] = os.environ.get("S3_SECURE", "false")
            report["generation_vs_embedded"] = generation_vs_embedded(
                env, args.classes, args.per_class, args.steps, args.cfg, args.gen_batch_size,
                args.rounds, args.model_path)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
