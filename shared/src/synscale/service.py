"""One service as one process: gRPC + Kafka workers + metrics, configured by environment.

Every service's `__main__` is three lines around `run_service`, so the five processes
start, report health, export metrics, log and stop the same way. The lifecycle:

1. read configuration from the environment only (RuntimeConfig.from_env plus the
   SYNSCALE_* process settings below), so one image runs under Helm, the local
   launcher and tests unchanged;
2. build the ServiceContext (Kafka + MinIO, or memory + file for SYNSCALE_RUNTIME=embedded),
   ensure every topic exists with its configured partitions;
3. start the Prometheus endpoint, build the gRPC server (health + reflection) with health
   NOT_SERVING, start SYNSCALE_WORKERS consumer-group members per Subscription, then
   flip health to SERVING — readiness means "consuming and answering". A dependency that
   is down at start, or goes down later, makes health NOT_SERVING with the reason logged
   (event "degraded") until it answers again; the process does not exit for it (ADR 0015).
   The health name "synscale.liveness" stays SERVING while the process runs;
4. on SIGTERM/SIGINT (or a worker thread dying): health NOT_SERVING first so Kubernetes
   stops routing, then stop the workers (each finishes and commits the message in hand),
   then stop the gRPC server, flush and close the bus. Exit 0 on a requested stop, 1 when
   a worker died, 2 on bad configuration.

Process settings (all optional):
  SYNSCALE_GRPC_HOST (0.0.0.0)  SYNSCALE_GRPC_PORT (50051)  SYNSCALE_GRPC_THREADS (8)
  SYNSCALE_METRICS_PORT (9090; "off" disables; 0 picks a free port)
  SYNSCALE_WORKERS (1; consumer threads per subscription, 0 = gRPC only)
  SYNSCALE_SHUTDOWN_GRACE_S (25)  SYNSCALE_LAG_INTERVAL_S (15; 0 disables the lag probe)
  SYNSCALE_ENSURE_TOPICS (true)   SYNSCALE_LOG_LEVEL / SYNSCALE_LOG_FORMAT (logging_setup)
  SYNSCALE_HEALTH_INTERVAL_S (5; how often health pings Kafka and the store)
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Any

from synscale import __version__, metrics
from synscale.bus.base import Message, Worker, WorkerEvents
from synscale.config import RuntimeConfig, make_bus, make_store
from synscale.errors import failure_kind, is_transient
from synscale.grpc_server import ServiceBinding, build_server
from synscale.logging_setup import configure_logging
from synscale.runtime import ServiceContext, Subscription
from synscale.settings import Env, SettingsError

log = logging.getLogger(__name__)

BindingsFn = Callable[[ServiceContext], list[ServiceBinding]]
SubscriptionsFn = Callable[[ServiceContext], list[Subscription]]

EXIT_OK, EXIT_WORKER_FAILED, EXIT_BAD_CONFIG = 0, 1, 2
# A health service name that is SERVING for as long as the process runs, whatever its
# dependencies do: Kubernetes' liveness and startup probes ask for it, readiness asks for
# "" (ADR 0015), so an outage takes pods out of rotation instead of restarting them.
LIVENESS_SERVICE = "synscale.liveness"


ConfigError = SettingsError  # the one settings error type (synscale.settings)


def _int(env: dict[str, str], key: str, default: int, minimum: int = 0) -> int:
    return Env(env).integer(key, default, minimum)


def _float(env: dict[str, str], key: str, default: float) -> float:
    return Env(env).number(key, default, minimum=0.0)


def _bool(env: dict[str, str], key: str, default: bool) -> bool:
    return Env(env).flag(key, default)


@dataclass(frozen=True)
class ServiceSettings:
    """How this process serves; the data plane settings are in RuntimeConfig."""

    grpc_host: str = "0.0.0.0"
    grpc_port: int = 50051
    grpc_threads: int = 8
    metrics_port: int | None = 9090
    workers: int = 1
    shutdown_grace_s: float = 25.0
    lag_interval_s: float = 15.0
    ensure_topics: bool = True
    health_interval_s: float = 5.0

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> ServiceSettings:
        env = dict(os.environ if env is None else env)
        metrics_raw = env.get("SYNSCALE_METRICS_PORT", "").strip().lower()
        return cls(
            grpc_host=env.get("SYNSCALE_GRPC_HOST", "0.0.0.0"),
            grpc_port=_int(env, "SYNSCALE_GRPC_PORT", 50051),
            grpc_threads=_int(env, "SYNSCALE_GRPC_THREADS", 8, minimum=1),
            metrics_port=None if metrics_raw in {"off", "none", "disabled"}
            else _int(env, "SYNSCALE_METRICS_PORT", 9090),
            workers=_int(env, "SYNSCALE_WORKERS", 1),
            shutdown_grace_s=_float(env, "SYNSCALE_SHUTDOWN_GRACE_S", 25.0),
            lag_interval_s=_float(env, "SYNSCALE_LAG_INTERVAL_S", 15.0),
            ensure_topics=_bool(env, "SYNSCALE_ENSURE_TOPICS", True),
            health_interval_s=max(0.1, _float(env, "SYNSCALE_HEALTH_INTERVAL_S", 5.0)),
        )


class ServiceProcess:
    """The running parts of one service, with an explicit start and a graceful stop."""

    def __init__(self, name: str, bindings: BindingsFn, subscriptions: SubscriptionsFn,
                 env: dict[str, str] | None = None) -> None:
        env = dict(os.environ if env is None else env)
        self.name = name
        self.settings = ServiceSettings.from_env(env)
        try:
            self.config = RuntimeConfig.from_env(env)
        except SettingsError:
            raise
        except ValueError as exc:
            raise ConfigError("environment", str(exc)) from None
        self._bindings_fn = bindings
        self._subscriptions_fn = subscriptions
        self._stop = threading.Event()
        self._stop_reason = ""
        self._failed = threading.Event()
        self._threads: list[threading.Thread] = []
        self._workers: list[Worker] = []
        self._server: Any = None
        self._health: Any = None
        self._service_names: list[str] = []
        self._metrics_server: Any = None
        self._lag: metrics.LagMonitor | None = None
        self.ctx: ServiceContext | None = None
        self._subs: list[Subscription] | None = None
        self._started: set[str] = set()
        self._topics_ready = False
        self._connected = False
        self._reasons: list[str] = []
        self._health_lock = threading.Lock()
        self._health_thread: threading.Thread | None = None
        self.grpc_port = 0
        self.metrics_port: int | None = None

    # -- start -------------------------------------------------------------------------
    def start(self) -> None:
        """Serve gRPC at once; consume as soon as Kafka and the store answer (ADR 0015).

        When both answer right away this returns with the workers consuming and health
        SERVING. Otherwise it returns with health NOT_SERVING, the reason logged and in
        `degraded_reasons()`, and a health thread that keeps trying: the process never
        exits for a dependency that is merely down.
        """
        metrics.set_service_name(self.name)
        cfg = self.config
        bus = make_bus(cfg, client_id=f"synscale-{self.name}", connect=False)
        store = make_store(cfg, connect=False)
        self.ctx = ctx = ServiceContext(bus=bus, store=store, topics=cfg.topics, config=cfg)
        metrics.SERVICE_INFO.info({"service": self.name, "runtime": cfg.runtime,
                                   "version": __version__})
        self._start_metrics()

        bindings = self._bindings_fn(ctx)
        self._service_names = [b.full_name for b in bindings]
        server, port, health = build_server(
            bindings, f"{self.settings.grpc_host}:{self.settings.grpc_port}",
            max_workers=self.settings.grpc_threads)
        self._server, self.grpc_port, self._health = server, port, health
        self._set_health(serving=False)  # not ready until the workers consume
        from grpc_health.v1 import health_pb2

        health.set(LIVENESS_SERVICE, health_pb2.HealthCheckResponse.SERVING)

        if not self._connect():
            log.warning("service started degraded: %s", "; ".join(self._reasons),
                        extra={"event": "degraded", "reasons": self._reasons,
                               "grpc_port": self.grpc_port})
        self._health_thread = threading.Thread(target=self._watch_health, name="health", daemon=True)
        self._health_thread.start()

    def _connect(self) -> bool:
        """One try at reaching the dependencies and starting the workers; True once consuming.

        Transient failures (a dependency down) leave the reason in `_reasons` for the
        health thread to retry; anything else (bad credentials, a bug) is raised.
        """
        ctx, cfg = self.ctx, self.config
        assert ctx is not None
        try:
            ctx.bus.ping()
            if self.settings.ensure_topics and not self._topics_ready:
                cfg.topics.ensure_all(ctx.bus)
                self._topics_ready = True
            ctx.store.ping()
            if self._subs is None:
                self._subs = self._subscriptions_fn(ctx)
            for sub in self._subs:
                if sub.group not in self._started:
                    self._start_workers(ctx, sub)
                    self._started.add(sub.group)
        except Exception as exc:
            if not is_transient(exc):
                raise
            self._reasons = [f"{failure_kind(exc)}: {exc}"[:500]]
            return False
        subs = self._subs
        self._lag = metrics.LagMonitor(
            lambda: metrics.lag_source_for(ctx.bus, cfg.kafka_bootstrap),
            [(sub.group, ctx.topics.name(t)) for sub in subs for t in sub.topics],
            self.name, self.settings.lag_interval_s).start()
        self._connected = True
        self._reasons = []
        self._set_health(serving=True)
        log.info("service ready", extra={
            "event": "ready", "grpc_port": self.grpc_port, "metrics_port": self.metrics_port,
            "runtime": cfg.runtime, "workers": len(self._workers),
            "groups": sorted({s.group for s in subs})})
        return True

    def degraded_reasons(self) -> list[str]:
        """Why the service is NOT_SERVING right now (empty when it serves)."""
        return list(self._reasons)

    def _watch_health(self) -> None:
        """Health follows the dependencies: NOT_SERVING with the reason while one is down.

        Before the workers run, each tick retries the start; afterwards it combines what
        the workers report (a handler waiting out an outage) with a ping of Kafka and
        the store, so an idle service also notices an outage.
        """
        interval = self.settings.health_interval_s
        while not self._stop.wait(interval if self._connected else min(interval, 2.0)):
            try:
                if not self._connected:
                    self._connect()
                    continue
                self._evaluate()
            except Exception:
                log.exception("service %s cannot start its workers; stopping", self.name)
                self._failed.set()
                self.request_stop("start failed")
                return

    def _evaluate(self) -> None:
        ctx = self.ctx
        assert ctx is not None
        reasons = [f"worker {w.group}: {w.degraded_reason}" for w in list(self._workers) if w.degraded_reason]
        for dependency, ping in (("kafka", ctx.bus.ping), ("store", ctx.store.ping)):
            try:
                ping()
                metrics.DEPENDENCY_UP.labels(self.name, dependency).set(1)
            except Exception as exc:
                if not is_transient(exc):
                    raise
                metrics.DEPENDENCY_UP.labels(self.name, dependency).set(0)
                reasons.append(f"{dependency}: {failure_kind(exc)}: {exc}"[:500])
        if len(reasons) == len([w for w in self._workers if w.degraded_reason]):
            for w in list(self._workers):  # both answer: waiting workers retry now, not after backoff
                if w.degraded_reason:
                    w.retry_now()
        self._apply(reasons)

    def _apply(self, reasons: list[str]) -> None:
        with self._health_lock:
            was, self._reasons = self._reasons, reasons
            if bool(was) == bool(reasons) or self._stop.is_set():
                return
            self._set_health(serving=not reasons)
        if reasons:
            log.warning("NOT_SERVING: %s", "; ".join(reasons),
                        extra={"event": "degraded", "reasons": reasons})
        else:
            log.info("SERVING again: dependencies answer", extra={"event": "recovered"})

    def _start_metrics(self) -> None:
        if self.settings.metrics_port is None:
            return
        from prometheus_client import start_http_server

        server, _ = start_http_server(self.settings.metrics_port, addr=self.settings.grpc_host)
        self._metrics_server = server
        self.metrics_port = int(server.server_port)

    def _start_workers(self, ctx: ServiceContext, sub: Subscription) -> None:
        topics = [ctx.topics.name(t) for t in sub.topics]
        for i in range(self.settings.workers):
            worker = ctx.bus.subscribe(
                topics, sub.group, metrics.instrument(sub.handler, sub.retry, self.name),
                retry=sub.retry, options=sub.options)
            worker.events = _HealthEvents(self)
            thread = threading.Thread(target=self._run_worker, args=(worker,),
                                      name=f"{sub.group}-{i}", daemon=True)
            self._workers.append(worker)
            self._threads.append(thread)
            thread.start()
        metrics.WORKER_THREADS.labels(self.name, sub.group).set(self.settings.workers)

    def _run_worker(self, worker: Worker) -> None:
        try:
            worker.run()
        except Exception:
            log.exception("worker of group %s died; stopping the service so it restarts",
                          worker.group)
            self._failed.set()
            self.request_stop("worker failed")
        finally:
            try:
                worker.close()
            except Exception as exc:
                log.warning("closing worker of %s: %s", worker.group, exc)

    def _set_health(self, serving: bool) -> None:
        from grpc_health.v1 import health_pb2

        status = (health_pb2.HealthCheckResponse.SERVING if serving
                  else health_pb2.HealthCheckResponse.NOT_SERVING)
        for svc in ["", *self._service_names]:
            self._health.set(svc, status)
        metrics.READY.labels(self.name).set(1 if serving else 0)


    # -- stop --------------------------------------------------------------------------
    def request_stop(self, reason: str) -> None:
        if not self._stop.is_set():
            self._stop_reason = reason
            log.info("stop requested", extra={"event": "stopping", "reason": reason})
        self._stop.set()

    def wait(self) -> None:
        """Block until a stop is requested (short waits keep signal handlers responsive)."""
        while not self._stop.wait(0.5):
            pass

    def shutdown(self) -> int:
        """Graceful stop; returns the process exit status."""
        started = time.monotonic()
        if self._health is not None:
            self._health.enter_graceful_shutdown()  # NOT_SERVING before anything else stops
        for worker in self._workers:
            worker.stop()
        deadline = started + self.settings.shutdown_grace_s
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                log.warning("worker %s still busy after %.0fs grace; its message will be "
                            "redelivered", thread.name, self.settings.shutdown_grace_s)
        if self._health_thread is not None:
            self._health_thread.join(5)
        if self._lag is not None:
            self._lag.stop()
        if self._server is not None:
            self._server.stop(grace=max(1.0, deadline - time.monotonic())).wait()
        if self.ctx is not None:
            try:
                self.ctx.bus.close()
            except Exception as exc:
                log.warning("closing the bus: %s", exc)
        if self._metrics_server is not None:
            self._metrics_server.shutdown()
            self._metrics_server.server_close()
        code = EXIT_WORKER_FAILED if self._failed.is_set() else EXIT_OK
        log.info("service stopped", extra={"event": "stopped", "exit_code": code,
                                           "reason": self._stop_reason,
                                           "seconds": round(time.monotonic() - started, 3)})
        return code


class _HealthEvents(WorkerEvents):
    """A worker's news, turned into health (at once, not at the next tick) and metrics."""

    def __init__(self, proc: ServiceProcess) -> None:
        self.proc = proc

    def degraded(self, worker: Worker, reason: str) -> None:
        metrics.TRANSIENT_FAILURES.labels(self.proc.name, worker.group).inc()
        self.proc._apply([*self.proc._reasons, f"worker {worker.group}: {reason}"])

    def recovered(self, worker: Worker) -> None:
        pending = [r for r in self.proc._reasons if not r.startswith(f"worker {worker.group}:")]
        self.proc._apply(pending)

    def dead_lettered(self, worker: Worker, message: Message, kind: str) -> None:
        metrics.DEAD_LETTERS.labels(self.proc.name, message.topic, kind).inc()


def _install_signal_handlers(proc: ServiceProcess) -> None:
    if threading.current_thread() is not threading.main_thread():
        return  # signals can only be handled on the main thread (embedded callers)

    def handle(signum: int, _frame: FrameType | None) -> None:
        proc.request_stop(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


def run_service(name: str, bindings: BindingsFn, subscriptions: SubscriptionsFn) -> int:
    """Run service `name` until SIGTERM/SIGINT; returns the exit status for SystemExit."""
    try:
        configure_logging(name)
    except ValueError as exc:
        print(f"synscale-{name}: {exc}", flush=True)
        return EXIT_BAD_CONFIG
    try:
        proc = ServiceProcess(name, bindings, subscriptions)
    except ConfigError as exc:
        log.error("bad configuration: %s", exc, extra={"event": "config_error"})
        return EXIT_BAD_CONFIG
    _install_signal_handlers(proc)
    try:
        proc.start()
    except Exception:
        log.exception("service %s failed to start", name)
        proc.request_stop("start failed")
        proc._failed.set()
        proc.shutdown()
        return EXIT_WORKER_FAILED
    proc.wait()
    return proc.shutdown()
