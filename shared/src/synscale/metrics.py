"""Prometheus metrics every service exports, and the consumer-lag probe.

The metric objects live here, once, on prometheus_client's default registry, so a
service's domain code can count what it did (`record_images(n, "generated")`) without
knowing whether the process runs embedded or under `run_service`, and so operators get
one metric vocabulary across the five services:

- synscale_jobs_handled_total{service,topic}       handler returned normally
- synscale_jobs_failed_total{service,topic}        one handler attempt raised (retried or not)
- synscale_jobs_dead_lettered_total{service,topic} message went to `<topic>.dlq`
- synscale_handler_seconds{service,topic}          handler latency (per attempt)
- synscale_consumer_lag{service,group,topic}       messages behind the log end, where known
- synscale_images_total{service,stage}             images generated / scored / trained on
- synscale_worker_threads{service,group}           consumer-group members this process runs
- synscale_dead_letters_total{service,topic,reason} dead letters by the failure's class name
- synscale_transient_failures_total{service,group}  outages a worker began waiting out
- synscale_dependency_up{service,dependency}        1 while kafka / store answer the health ping
- synscale_ready{service}                           1 while gRPC health is SERVING
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from prometheus_client import Counter, Gauge, Histogram, Info

from synscale.bus.base import Handler, Message, PoisonMessage, RetryPolicy
from synscale.errors import is_transient

log = logging.getLogger(__name__)

# Handler latencies span a cheap prompt expansion (ms) to a GPU generation batch (minutes).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)

JOBS_HANDLED = Counter(
    "synscale_jobs_handled", "Messages whose handler returned normally.", ["service", "topic"])
JOBS_FAILED = Counter(
    "synscale_jobs_failed", "Handler attempts that raised (each retry counts).",
    ["service", "topic"])
JOBS_DEAD_LETTERED = Counter(
    "synscale_jobs_dead_lettered", "Messages sent to the dead-letter topic.", ["service", "topic"])
HANDLER_SECONDS = Histogram(
    "synscale_handler_seconds", "Wall time of one handler attempt.", ["service", "topic"],
    buckets=LATENCY_BUCKETS)
CONSUMER_LAG = Gauge(
    "synscale_consumer_lag", "Messages between the group's committed offset and the log end.",
    ["service", "group", "topic"])
IMAGES = Counter(
    "synscale_images", "Images processed, by stage (generated, scored, trained).",
    ["service", "stage"])
WORKER_THREADS = Gauge(
    "synscale_worker_threads", "Consumer-group members running in this process.",
    ["service", "group"])
DEAD_LETTERS = Counter(
    "synscale_dead_letters", "Dead letters by reason (the failure's class name).",
    ["service", "topic", "reason"])
TRANSIENT_FAILURES = Counter(
    "synscale_transient_failures", "Outages (store/broker down, timeouts) a worker began waiting out.",
    ["service", "group"])
DEPENDENCY_UP = Gauge(
    "synscale_dependency_up", "1 while the dependency answers the service's health ping.",
    ["service", "dependency"])
READY = Gauge("synscale_ready", "1 while the service reports gRPC health SERVING.", ["service"])
SERVICE_INFO = Info("synscale_service", "Which service this process runs, and how.")

_service_name = "embedded"


def set_service_name(name: str) -> None:
    """Label every later observation with `name` (run_service calls this once)."""
    global _service_name
    _service_name = name


def service_name() -> str:
    return _service_name


def record_images(count: int, stage: str) -> None:
    """Count images a service produced or consumed; stage e.g. 'generated', 'scored'."""
    if count < 0:
        raise ValueError(f"record_images: count must be >= 0, got {count}")
    IMAGES.labels(service=_service_name, stage=stage).inc(count)


def instrument(handler: Handler, retry: RetryPolicy, service: str | None = None) -> Handler:
    """Wrap a handler to count outcomes and time attempts.

    The shared consume loop retries a permanently failing message `retry.max_attempts`
    times and then dead-letters it (a PoisonMessage at once); transient failures (an
    outage) are retried without counting. Each worker runs its messages one at a time, so
    counting the permanent failures of the same (topic, partition, offset) tells exactly
    when the loop will dead-letter, without reaching into the bus. Use one wrapper per
    worker.
    """
    state: dict[str, Any] = {"last": None, "failures": 0}

    def wrapped(message: Message) -> None:
        svc = service or _service_name
        ident = (message.topic, message.partition, message.offset)
        if state["last"] != ident:
            state["last"], state["failures"] = ident, 0
        start = time.perf_counter()
        try:
            handler(message)
        except PoisonMessage:
            JOBS_FAILED.labels(svc, message.topic).inc()
            JOBS_DEAD_LETTERED.labels(svc, message.topic).inc()
            raise
        except Exception as exc:
            JOBS_FAILED.labels(svc, message.topic).inc()
            if is_transient(exc):
                raise
            state["failures"] += 1
            if state["failures"] >= retry.max_attempts:
                JOBS_DEAD_LETTERED.labels(svc, message.topic).inc()
            raise
        finally:
            HANDLER_SECONDS.labels(svc, message.topic).observe(time.perf_counter() - start)
        JOBS_HANDLED.labels(svc, message.topic).inc()

    return wrapped


class LagSource(Protocol):
    """Anything that can say how far a consumer group is behind on a topic."""

    def lag(self, topic: str, group: str) -> int | None: ...

    def close(self) -> None: ...


class BusLag:
    """Lag from a bus that tracks it itself (the MemoryBus)."""

    def __init__(self, bus: Any) -> None:
        self.bus = bus

    def lag(self, topic: str, group: str) -> int | None:
        return int(self.bus.lag(topic, group))

    def close(self) -> None:
        return None


class KafkaLag:
    """Lag as KEDA computes it: log-end offsets minus the group's committed offsets.

    Uses its own admin client and group-less consumer, touched only by the probe
    thread, because kafka-python consumers are not thread-safe and the workers' own
    consumers belong to their threads.
    """

    def __init__(self, bootstrap_servers: str, timeout_ms: int = 5000) -> None:
        from kafka import KafkaConsumer
        from kafka.admin import KafkaAdminClient

        self._admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers,
                                       client_id="synscale-lag", request_timeout_ms=timeout_ms)
        self._consumer = KafkaConsumer(
            bootstrap_servers=bootstrap_servers, group_id=None, client_id="synscale-lag",
            request_timeout_ms=timeout_ms + 1000)
        self._timeout_ms = timeout_ms

    def lag(self, topic: str, group: str) -> int | None:
        from kafka import TopicPartition

        parts = self._consumer.partitions_for_topic(topic)
        if not parts:
            return None
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        ends = self._consumer.end_offsets(tps, timeout_ms=self._timeout_ms)
        committed = self._admin.list_group_offsets({group: tps}).get(group, {})
        total = 0
        for tp in tps:
            done = committed.get(tp)
            offset = done.offset if done is not None and done.offset >= 0 else 0
            total += max(0, int(ends.get(tp, 0)) - offset)
        return total

    def close(self) -> None:
        for closer in (self._consumer.close, self._admin.close):
            try:
                closer()
            except Exception as exc:  # best effort at shutdown
                log.debug("closing lag probe: %s", exc)


def lag_source_for(bus: Any, kafka_bootstrap: str) -> LagSource | None:
    """The right probe for this bus, or None where lag cannot be measured."""
    if hasattr(bus, "lag"):
        return BusLag(bus)
    if kafka_bootstrap:
        return KafkaLag(kafka_bootstrap)
    return None


class LagMonitor:
    """Refreshes synscale_consumer_lag every `interval_s` in a daemon thread."""

    def __init__(self, make_source: Callable[[], LagSource | None],
                 pairs: Iterable[tuple[str, str]], service: str, interval_s: float) -> None:
        self._make_source = make_source
        self._pairs = sorted(set(pairs))  # (group, topic)
        self._service = service
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lag-monitor", daemon=True)

    def start(self) -> LagMonitor:
        if self._pairs and self._interval_s > 0:
            self._thread.start()
        return self

    def _run(self) -> None:
        source: LagSource | None = None
        try:
            while not self._stop.is_set():
                try:
                    source = source or self._make_source()
                    if source is None:
                        return
                    for group, topic in self._pairs:
                        value = source.lag(topic, group)
                        if value is not None:
                            CONSUMER_LAG.labels(self._service, group, topic).set(value)
                except Exception as exc:  # a broker hiccup must not kill the service
                    log.warning("consumer lag probe failed: %s", exc)
                self._stop.wait(self._interval_s)
        finally:
            if source is not None:
                source.close()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
