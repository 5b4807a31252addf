"""The distributed runtime: the analyzer as its own process on real Kafka + MinIO, killed and restarted.

The four other services are the deterministic stand-ins of tests/unit/analyzer (they
follow the same conventions and count the work they do), running as Kafka consumer
groups in this process. The analyzer process is driven over gRPC (`synscale study
submit`), SIGKILLed part-way, and started again: it rebuilds its state from MinIO and the
study ends with the report an embedded run of the same study writes — and no run trained
twice.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from synscale import layout
from synscale.bus.kafka import KafkaBus
from synscale.cli import main
from synscale.config import Topics
from synscale.embedded import run_study
from synscale.runtime import ServiceContext
from synscale.testing.modules import load_module
from synscale.v1 import study_pb2, study_pb2_grpc

pytestmark = [pytest.mark.infra, pytest.mark.slow]
HERE = Path(__file__).resolve().parent
FAKES_PATH = HERE.parent / "unit" / "analyzer" / "conftest.py"
support = load_module("synscale_e2e_support", HERE / "_support.py")


def _fakes() -> Any:
    """The analyzer unit tests' stand-ins (tests/unit/analyzer/conftest.py)."""
    return load_module("analyzer_fakes", FAKES_PATH)


class Services:
    """The stand-in prompter, generator, scorer and trainer as Kafka consumer threads."""

    def __init__(self, fakes: Any, env: dict[str, str], store: Any, topics: Topics) -> None:
        self.log = fakes.FakeLog()
        self.bus = KafkaBus(env["KAFKA_BOOTSTRAP_SERVERS"], session_timeout_ms=6000)
        self.ctx = ServiceContext(self.bus, store, topics)
        topics.ensure_all(self.bus)
        self.workers = []
        for provider in fakes.fake_providers(self.log).values():
            for sub in provider(self.ctx):
                self.workers.append(self.bus.subscribe([topics.name(t) for t in sub.topics], sub.group,
                                                       sub.handler))
        self.threads = [threading.Thread(target=w.run, kwargs={"poll_timeout_s": 0.2}, daemon=True)
                        for w in self.workers]
        for t in self.threads:
            t.start()

    def close(self) -> None:
        for w in self.workers:
            w.stop()
        for t in self.threads:
            t.join(30)
        for w in self.workers:
            w.close()
        self.bus.close()


def _start_analyzer(env: dict[str, str], port: int, log_path: Path) -> subprocess.Popen[bytes]:
    with open(log_path, "ab") as log:
        return subprocess.Popen([sys.executable, "-m", "synscale_analyzer"], env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)


@pytest.fixture
def analyzer_env(infra_env: dict[str, str], unique: str, minio_store: Any) -> Iterator[dict[str, str]]:
    env = {**os.environ, **infra_env, "SYNSCALE_RUNTIME": "distributed", "S3_BUCKET": minio_store.bucket,
           "SYNSCALE_TOPIC_PREFIX": f"an-{unique}", "SYNSCALE_PARTITIONS": "2",
           "SYNSCALE_GRPC_PORT": str(support.free_port()), "SYNSCALE_METRICS_PORT": "off",
           "SYNSCALE_LAG_INTERVAL_S": "0"}
    yield env


def test_killed_analyzer_is_restarted_and_the_study_completes(
    analyzer_env: dict[str, str], minio_store: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    fakes = _fakes()
    spec = fakes.parse_study(fakes.TOY_STUDY)
    topics = Topics(prefix=analyzer_env["SYNSCALE_TOPIC_PREFIX"], default_partitions=2)
    services = Services(fakes, analyzer_env, minio_store, topics)
    port = int(analyzer_env["SYNSCALE_GRPC_PORT"])
    log_path = tmp_path / "analyzer.log"
    proc = _start_analyzer(analyzer_env, port, log_path)
    try:
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        grpc.channel_ready_future(channel).result(timeout=60)
        stub = study_pb2_grpc.AnalyzerStub(channel)
        stub.SubmitStudy(study_pb2.SubmitStudyRequest(spec_yaml=spec.to_yaml()), timeout=30)
        runs_prefix = f"{layout.study_prefix(spec.study_id)}/runs/"

        def results() -> int:
            return sum(1 for o in minio_store.list(runs_prefix) if o.key.endswith("/result.json"))

        support.wait_for(lambda: results() >= 6, 180, "some training runs to finish")
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
        # The stand-in trainers keep running and may finish every run now; what the killed
        # analyzer must not have done is the report, which only a restarted one can write.
        report_key = layout.report_key(spec.study_id, "report.json")
        assert not minio_store.exists(report_key), "the study finished before the analyzer could be killed"

        proc = _start_analyzer(analyzer_env, port, log_path)
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        grpc.channel_ready_future(channel).result(timeout=60)
        stub = study_pb2_grpc.AnalyzerStub(channel)
        status = support.wait_for(lambda: _status_if_done(stub, spec.study_id), 240,
                                  "the report after the restart")
        assert status.report.json_key
        # `synscale study report --download` fetches the files from MinIO (S3_* in the environment).
        for key in ("S3_ENDPOINT", "S3_ACCESS_KEY", "S3_SECRET_KEY"):
            monkeypatch.setenv(key, analyzer_env[key])
        assert main(["study", "report", spec.study_id, "--address", f"127.0.0.1:{port}",
                     "--download", str(tmp_path / "dl")]) == 0
        assert (tmp_path / "dl" / "report.json").read_bytes() == minio_store.get(status.report.json_key)
        assert (tmp_path / "dl" / "report.html").stat().st_size > 0
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        services.close()
    log_text = log_path.read_text(errors="replace")
    distributed = json.loads(minio_store.get(layout.report_key(spec.study_id, "report.json")))

    # The same study in the embedded runtime, with the same stand-ins: the same numbers.
    embedded_log, providers = fakes.FakeLog(), None
    from synscale_analyzer.worker import subscriptions as analyzer

    providers = {**fakes.fake_providers(embedded_log), "analyzer": analyzer}
    outcome = run_study(spec, tmp_path / "embedded", providers=providers, progress=False)
    assert outcome.state == "done" and outcome.report_json is not None
    assert distributed == json.loads(outcome.report_json.read_bytes()), log_text[-3000:]
    assert len(services.log.runs_trained) == 27
    assert max(services.log.runs_trained.values()) == 1
    assert max(services.log.shards_written.values()) == 1


def _status_if_done(stub: Any, study_id: str) -> Any:
    try:
        status = stub.GetStatus(study_pb2.StudyRef(study_id=study_id), timeout=10)
    except grpc.RpcError:
        return None
    return status if status.state == "done" else None
