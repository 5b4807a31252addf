"""run_service's parts without servers: settings, JSON logs, metrics wrapper, embedded run.

The process-level contract over real Kafka and MinIO is in
tests/integration/test_service_runner.py; these pin the pieces fast.
"""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from synscale import metrics
from synscale.bus.base import Message, PoisonMessage, RetryPolicy
from synscale.grpc_server import check_health
from synscale.logging_setup import JsonFormatter, configure_logging
from synscale.runtime import Subscription
from synscale.service import ConfigError, ServiceProcess, ServiceSettings


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_settings_defaults_and_overrides() -> None:
    assert ServiceSettings.from_env({}) == ServiceSettings()
    s = ServiceSettings.from_env({"SYNSCALE_GRPC_PORT": "7000", "SYNSCALE_WORKERS": "4",
                                  "SYNSCALE_METRICS_PORT": "off", "SYNSCALE_ENSURE_TOPICS": "no"})
    assert (s.grpc_port, s.workers, s.metrics_port, s.ensure_topics) == (7000, 4, None, False)


@pytest.mark.parametrize(("key", "value"), [
    ("SYNSCALE_WORKERS", "two"), ("SYNSCALE_GRPC_PORT", "-1"), ("SYNSCALE_GRPC_THREADS", "0"),
    ("SYNSCALE_SHUTDOWN_GRACE_S", "soon"), ("SYNSCALE_ENSURE_TOPICS", "maybe"),
])
def test_bad_settings_name_the_variable(key: str, value: str) -> None:
    with pytest.raises(ConfigError, match=key):
        ServiceSettings.from_env({key: value})


def test_json_log_lines_carry_service_and_extra_fields() -> None:
    record = logging.LogRecord("synscale.x", logging.WARNING, __file__, 1, "handled %d", (3,), None)
    record.topic = "synscale.prompt-jobs"
    doc = json.loads(JsonFormatter("prompter").format(record))
    assert doc["service"] == "prompter" and doc["level"] == "WARNING"
    assert doc["message"] == "handled 3" and doc["topic"] == "synscale.prompt-jobs"
    assert doc["ts"].endswith("+00:00")


def test_configure_logging_rejects_unknown_format() -> None:
    with pytest.raises(ValueError, match="SYNSCALE_LOG_FORMAT"):
        configure_logging("x", {"SYNSCALE_LOG_FORMAT": "xml"}, stream=io.StringIO())


def test_instrument_counts_outcomes_and_dead_letters() -> None:
    calls = {"n": 0}

    def flaky(message: Message) -> None:
        calls["n"] += 1
        if message.value == b"poison":
            raise PoisonMessage("never")
        if message.value == b"bad":
            raise RuntimeError("always fails")

    svc, topic = "unit-instrument", "t.instrument"
    wrapped = metrics.instrument(flaky, RetryPolicy(max_attempts=3), svc)
    wrapped(Message(topic, b"ok", None, 0, 0))
    with pytest.raises(PoisonMessage):
        wrapped(Message(topic, b"poison", None, 0, 1))
    for _ in range(3):  # what the consume loop does: same message, max_attempts times
        with pytest.raises(RuntimeError):
            wrapped(Message(topic, b"bad", None, 0, 2))
    labels = {"service": svc, "topic": topic}
    assert _value("synscale_jobs_handled_total", **labels) == 1
    assert _value("synscale_jobs_failed_total", **labels) == 4
    assert _value("synscale_jobs_dead_lettered_total", **labels) == 2
    assert _value("synscale_handler_seconds_count", **labels) == 5


def test_record_images_rejects_negative_counts() -> None:
    with pytest.raises(ValueError, match="count"):
        metrics.record_images(-1, "generated")


def test_embedded_process_serves_consumes_and_stops(tmp_path: Path) -> None:
    """The same lifecycle over MemoryBus + FileStore: ready → handle → graceful stop."""
    seen: list[bytes] = []

    def subscriptions(ctx):  # type: ignore[no-untyped-def]
        return [Subscription(("prompt-jobs",), "unit", lambda m: seen.append(m.value))]

    env = {"SYNSCALE_RUNTIME": "embedded", "SYNSCALE_DATA_DIR": str(tmp_path),
           "SYNSCALE_GRPC_HOST": "127.0.0.1", "SYNSCALE_GRPC_PORT": "0",
           "SYNSCALE_METRICS_PORT": "off", "SYNSCALE_WORKERS": "2",
           "SYNSCALE_LAG_INTERVAL_S": "0.1"}
    proc = ServiceProcess("unit-embedded", lambda ctx: [], subscriptions, env)
    proc.start()
    try:
        assert proc.ctx is not None
        assert check_health(f"127.0.0.1:{proc.grpc_port}")
        for i in range(5):
            proc.ctx.publish("prompt-jobs", f"m{i}".encode(), key=str(i))
        deadline = time.monotonic() + 10
        while len(seen) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        topic = proc.ctx.topics.name("prompt-jobs")
        deadline = time.monotonic() + 10
        while _value("synscale_consumer_lag", service="unit-embedded", group="unit",
                     topic=topic) != 0 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        proc.request_stop("test")
        code = proc.shutdown()
    assert sorted(seen) == [b"m0", b"m1", b"m2", b"m3", b"m4"]
    assert code == 0
    assert not check_health(f"127.0.0.1:{proc.grpc_port}", timeout_s=1)
    assert REGISTRY.get_sample_value(
        "synscale_consumer_lag", {"service": "unit-embedded", "group": "unit", "topic": topic}) == 0


def test_bad_configuration_exits_2_naming_the_variable(tmp_path: Path) -> None:
    """A typo in the environment fails fast, before any server starts."""
    script = ("from synscale.service import run_service\n"
              "raise SystemExit(run_service('x', lambda c: [], lambda c: []))\n")
    env = {**os.environ, "SYNSCALE_RUNTIME": "embedded", "SYNSCALE_WORKERS": "two"}
    done = subprocess.run([sys.executable, "-c", script], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "SYNSCALE_WORKERS" in done.stderr
