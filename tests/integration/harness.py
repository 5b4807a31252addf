"""One harness per bus implementation, so the contract tests read the same for both.

A harness starts group members that write every message they handle into a store and
can kill a member abruptly: for Kafka a real process gets SIGKILL, for the in-memory bus
(which lives inside this process) the member vanishes without committing — the same
observable event for the group.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from synscale.bus.base import Bus, Message
from synscale.bus.memory import MemoryBus, MemoryWorker
from synscale.store.base import ObjectStore

HERE = Path(__file__).resolve().parent


class SimulatedCrash(BaseException):
    """Escapes the worker loop like a killed process: nothing after it runs."""


def wait_until(predicate: Callable[[], bool], timeout_s: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def consume(bus: Bus, topic: str, group: str, count: int, timeout_s: float = 90) -> list[Message]:
    """Up to `count` messages of a fresh group; joining a group can take a while on a busy host."""
    got: list[Message] = []
    worker = bus.subscribe([topic], group, got.append)
    deadline = time.monotonic() + timeout_s
    try:
        while len(got) < count and time.monotonic() < deadline:
            worker.run(max_messages=count - len(got), idle_timeout_s=3)
    finally:
        worker.close()
    return got

class MemoryHarness:
    name = "memory"

    def __init__(self, bus: MemoryBus, store: ObjectStore, log_dir: Path) -> None:
        self.bus = bus
        self.store = store
        self.log_dir = log_dir
        self.deliveries: list[str] = []
        self._lock = threading.Lock()

    def start(self, topic: str, group: str, *, sleep: float = 0.0, crash_on: str = "") -> Any:
        def handle(message: Message) -> None:
            value = message.value.decode()
            self.store.put(f"out/{value}", message.value)
            with self._lock:
                self.deliveries.append(value)
            if value == crash_on:
                raise SimulatedCrash(value)
            time.sleep(sleep)

        worker = self.bus.subscribe([topic], group, handle)

        def loop() -> None:
            try:
                worker.run()
            except SimulatedCrash:
                worker.crash()

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        return (worker, thread)

    def assignment(self, handle: Any) -> list[tuple[str, int]]:
        worker: MemoryWorker = handle[0]
        return worker.assignment()

    def kill(self, handle: Any) -> None:
        handle[0].crash()
        handle[1].join(10)

    def alive(self, handle: Any) -> bool:
        return bool(handle[1].is_alive())

    def stop(self, handle: Any) -> None:
        handle[0].stop()
        handle[1].join(10)
        handle[0].close()

    def delivered(self) -> list[str]:
        with self._lock:
            return list(self.deliveries)


class KafkaHarness:
    name = "kafka"

    def __init__(self, bus: Bus, store: ObjectStore, log_dir: Path, env: dict[str, str]) -> None:
        self.bus = bus
        self.store = store
        self.log_dir = log_dir
        self.env = {**os.environ, **env}

    def start(self, topic: str, group: str, *, sleep: float = 0.0, crash_on: str = "") -> Any:
        cmd = [sys.executable, str(HERE / "bus_worker_proc.py"), "--topic", topic, "--group", group,
               "--bucket", self.store.bucket, "--log-dir", str(self.log_dir), "--sleep", str(sleep),
               "--crash-on", crash_on]
        return subprocess.Popen(cmd, env=self.env)

    def assignment(self, handle: Any) -> list[tuple[str, int]]:
        path = self.log_dir / f"assignment-{handle.pid}.json"
        try:
            return sorted(tuple(x) for x in json.loads(path.read_text()))  # type: ignore[misc]
        except (FileNotFoundError, ValueError):
            return []

    def kill(self, handle: Any) -> None:
        handle.send_signal(signal.SIGKILL)
        handle.wait(10)

    def alive(self, handle: Any) -> bool:
        return handle.poll() is None

    def stop(self, handle: Any) -> None:
        if handle.poll() is None:
            handle.send_signal(signal.SIGTERM)
            try:
                handle.wait(20)
            except subprocess.TimeoutExpired:
                handle.kill()

    def delivered(self) -> list[str]:
        out: list[str] = []
        for path in sorted(self.log_dir.glob("deliveries-*.log")):
            out.extend(line for line in path.read_text().splitlines() if line)
        return out
