"""run_service as a real process over real Kafka and MinIO, with a stand-in service.

The stand-in is a tiny module written to a temporary folder, shaped exactly like a real
service's `__main__` (bindings + subscriptions + run_service), so this test pins the
process contract every service relies on: environment-only configuration, health and
reflection, metrics, at-least-once handling with dead letters, and a SIGTERM that lets
the message in hand finish and commit before the process exits 0.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from synscale.grpc_server import check_health

pytestmark = pytest.mark.infra

ROOT = Path(__file__).resolve().parents[2]

STANDIN = '''
"""Stand-in service: a Prompter servicer and one worker that writes what it receives."""
import time

from synscale import metrics
from synscale.bus.base import PoisonMessage
from synscale.grpc_server import ServiceBinding
from synscale.runtime import Subscription
from synscale.service import run_service
from synscale.v1 import prompter_pb2, prompter_pb2_grpc


class Servicer(prompter_pb2_grpc.PrompterServicer):
    def ListStrategies(self, request, context):
        return prompter_pb2.ListStrategiesResponse(
            strategies=[prompter_pb2.StrategyInfo(name="standin")])


def bindings(ctx):
    return [ServiceBinding(prompter_pb2_grpc.add_PrompterServicer_to_server, Servicer(),
                           "synscale.v1.Prompter")]


def subscriptions(ctx):
    def handle(message):
        text = message.value.decode()
        if text == "poison":
            raise PoisonMessage("stand-in refuses poison")
        if text.startswith("slow:"):
            ctx.store.put(f"standin/started-{message.partition}-{message.offset}", b"1")
            time.sleep(float(text.split(":")[1]))
        ctx.store.put(f"standin/done-{message.partition}-{message.offset}", message.value)
        metrics.record_images(3, "generated")
        ctx.publish("study-events", message.value, key=message.key)

    return [Subscription(("prompt-jobs",), "standin", handle)]


if __name__ == "__main__":
    raise SystemExit(run_service("standin", bindings, subscriptions))
'''


class ServiceUnderTest:
    """A started stand-in process and its structured log records."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.records: list[dict[str, Any]] = []
        self.raw: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.raw.append(line)
            with contextlib.suppress(json.JSONDecodeError):
                self.records.append(json.loads(line))

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool],
                 timeout_s: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for r in list(self.records):
                if predicate(r):
                    return r
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError("log record not seen; process output:\n" + "".join(self.raw[-40:]))


def _eventually(fn: Callable[[], Any], timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _keys(store: Any, marker: str) -> list[str]:
    return [o.key for o in store.list("standin/") if marker in o.key]


def _scrape(port: int) -> dict[str, float]:
    """Prometheus text format → {'name{labels}': value} for the synscale_* samples."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        assert resp.status == 200
        text = resp.read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith("synscale_"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


@pytest.fixture
def standin(tmp_path: Path, infra_env: dict[str, str], minio_store: Any,
            unique: str) -> Iterator[tuple[ServiceUnderTest, str]]:
    pkg = tmp_path / "standin_svc"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "__main__.py").write_text(textwrap.dedent(STANDIN))
    prefix = f"t{unique}"
    env = {
        **os.environ, **infra_env,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
        "SYNSCALE_RUNTIME": "distributed",
        "S3_BUCKET": minio_store.bucket,
        "SYNSCALE_TOPIC_PREFIX": prefix,
        "SYNSCALE_PARTITIONS": "2",
        "SYNSCALE_GRPC_HOST": "127.0.0.1",
        "SYNSCALE_GRPC_PORT": "0",
        "SYNSCALE_METRICS_PORT": "0",
        "SYNSCALE_LAG_INTERVAL_S": "0.5",
        "SYNSCALE_SHUTDOWN_GRACE_S": "20",
    }
    proc = subprocess.Popen([sys.executable, "-m", "standin_svc"], env=env, cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    svc = ServiceUnderTest(proc)
    try:
        yield svc, prefix
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def test_service_process_serves_handles_and_stops_gracefully(
        standin: tuple[ServiceUnderTest, str], kafka_bus: Any, minio_store: Any) -> None:
    svc, prefix = standin
    ready = svc.wait_for(lambda r: r.get("event") == "ready", timeout_s=60)
    assert ready["service"] == "standin" and ready["runtime"] == "distributed"
    target = f"127.0.0.1:{ready['grpc_port']}"

    # gRPC: health SERVING (overall and per service), reflection lists the service, calls work.
    assert check_health(target)
    assert check_health(target, "synscale.v1.Prompter")
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
        ProtoReflectionDescriptorDatabase,
    )

    from synscale.v1 import prompter_pb2, prompter_pb2_grpc

    with grpc.insecure_channel(target) as channel:
        services = set(ProtoReflectionDescriptorDatabase(channel).get_services())
        assert {"synscale.v1.Prompter", "grpc.health.v1.Health"} <= services
        reply = prompter_pb2_grpc.PrompterStub(channel).ListStrategies(
            prompter_pb2.ListStrategiesRequest(), timeout=5)
        assert [s.name for s in reply.strategies] == ["standin"]

    # Messages: one handled, one poison dead-lettered.
    topic = f"{prefix}.prompt-jobs"
    kafka_bus.publish(topic, b"hello", key="k1")
    kafka_bus.publish(topic, b"poison", key="k2")
    kafka_bus.flush()
    done = _eventually(lambda: _keys(minio_store, "done-"),
                       60, "the handler to write its object")
    assert minio_store.get(done[0]) == b"hello"

    metrics_port = ready["metrics_port"]
    labels = f'service="standin",topic="{topic}"'
    scraped = _eventually(
        lambda: (m := _scrape(metrics_port)).get(f"synscale_jobs_dead_lettered_total{{{labels}}}")
        and m.get(f'synscale_consumer_lag{{group="standin",service="standin",topic="{topic}"}}')
        == 0.0 and m, 30, "dead-letter count and zero lag in the metrics")
    assert scraped[f"synscale_jobs_handled_total{{{labels}}}"] == 1.0
    assert scraped[f"synscale_jobs_dead_lettered_total{{{labels}}}"] == 1.0
    assert scraped[f"synscale_handler_seconds_count{{{labels}}}"] == 2.0
    assert scraped['synscale_images_total{service="standin",stage="generated"}'] == 3.0
    assert scraped['synscale_worker_threads{group="standin",service="standin"}'] == 1.0

    # SIGTERM while a slow message is in hand: health goes NOT_SERVING at once, the
    # message still finishes and is committed, and the process exits 0.
    kafka_bus.publish(topic, b"slow:3", key="k3")
    kafka_bus.flush()
    _eventually(lambda: _keys(minio_store, "started-"),
                30, "the slow message to start")
    svc.proc.send_signal(signal.SIGTERM)
    _eventually(lambda: not check_health(target, timeout_s=1), 5, "health NOT_SERVING")
    assert svc.proc.wait(60) == 0
    keys = _keys(minio_store, "")
    assert sum("done-" in k for k in keys) == 2, keys
    stopped = svc.wait_for(lambda r: r.get("event") == "stopped", 5)
    assert stopped["exit_code"] == 0 and stopped["reason"] == "SIGTERM"
    assert all(r.get("level") != "ERROR" or "dead-letter" in r["message"] for r in svc.records)

    from synscale.metrics import KafkaLag

    lag = KafkaLag(kafka_bus.bootstrap_servers)
    try:
        assert lag.lag(topic, "standin") == 0  # the in-flight message was committed
    finally:
        lag.close()
    events = _read_all(kafka_bus, f"{prefix}.study-events", expected=2)
    assert sorted(events) == [b"hello", b"slow:3"]


def _read_all(bus: Any, topic: str, expected: int) -> list[bytes]:
    got: list[bytes] = []
    worker = bus.subscribe([topic], f"reader-{topic}", lambda m: got.append(m.value))
    with worker:
        worker.run(max_messages=expected, idle_timeout_s=20)
    return got
