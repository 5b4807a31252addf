"""What the end-to-end tests share: the five service processes, waiting, a study's artifacts.

Kept out of the test modules so a test reads as the scenario it checks. Test modules load
this file by path (see `_load_support` in test_distributed_services.py) because
tests/e2e is not a package and pytest runs with --import-mode=importlib.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from synscale import ids, layout
from synscale.grpc_server import check_health
from synscale.shards import iter_shard
from synscale.store.base import ObjectStore

SERVICES = ("prompter", "generator", "scorer", "trainer", "analyzer")
T = TypeVar("T")


def free_port() -> int:
    """A TCP port nothing listens on right now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(predicate: Callable[[], T], timeout_s: float, what: str, interval_s: float = 0.25,
             on_timeout: Callable[[], str] = lambda: "") -> T:
    """Poll `predicate` until it returns something truthy; fail naming `what` otherwise."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}\n{on_timeout()}")
        time.sleep(interval_s)


# -- the five services as processes -----------------------------------------------------------

def service_env(infra: Mapping[str, str], bucket: str, topic_prefix: str,
                extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment every service of one deployment shares (Kafka, MinIO, bucket, topics)."""
    return {
        **os.environ, **infra,
        "SYNSCALE_RUNTIME": "distributed",
        "S3_BUCKET": bucket,
        "SYNSCALE_TOPIC_PREFIX": topic_prefix,
        "SYNSCALE_PARTITIONS": "3",
        "SYNSCALE_LAG_INTERVAL_S": "0",
        "SYNSCALE_SHUTDOWN_GRACE_S": "5",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        **(extra or {}),
    }


@dataclass
class ServiceProc:
    name: str
    grpc_port: int
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


@dataclass
class Deployment:
    """`python -m synscale_<svc>` for each service, configured only by environment variables.

    Every process gets its own gRPC port and a free metrics port; its stdout/stderr (the
    JSON logs) go to `<log_dir>/<svc>.log`, appended across restarts.
    """

    env: dict[str, str]
    log_dir: Path
    services: tuple[str, ...] = SERVICES
    procs: dict[str, ServiceProc] = field(default_factory=dict)
    pythons: Mapping[str, str] = field(default_factory=dict)  # service -> its venv's python

    def __post_init__(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for name in self.services:
            self.procs[name] = ServiceProc(name, free_port(), self.log_dir / f"{name}.log")

    def start(self, name: str) -> None:
        sp = self.procs[name]
        env = {**self.env, "SYNSCALE_GRPC_PORT": str(sp.grpc_port), "SYNSCALE_METRICS_PORT": "0"}
        with open(sp.log_path, "ab") as log:
            python = self.pythons.get(name, sys.executable)
            sp.proc = subprocess.Popen([python, "-m", f"synscale_{name}"], env=env, stdout=log,
                                       stderr=subprocess.STDOUT, start_new_session=True)

    def start_all(self) -> None:
        for name in self.services:
            self.start(name)

    def wait_ready(self, names: Iterable[str] | None = None, timeout_s: float = 300) -> None:
        """Until each process answers gRPC health SERVING (= its workers consume)."""
        for name in names or self.services:
            wait_for(partial(self._ready, name), timeout_s, f"{name} to report SERVING", interval_s=0.5,
                     on_timeout=partial(self.log_tail, name))

    def _ready(self, name: str) -> bool:
        sp = self.procs[name]
        if not sp.alive():
            code = sp.proc.returncode if sp.proc is not None else None
            raise AssertionError(f"{name} exited with {code} before it was ready\n{self.log_tail(name)}")
        return check_health(sp.address, timeout_s=2)

    def kill(self, name: str) -> None:
        """SIGKILL the whole process group: nothing is flushed, committed or cleaned up."""
        sp = self.procs[name]
        assert sp.proc is not None
        os.killpg(sp.proc.pid, signal.SIGKILL)
        sp.proc.wait(30)

    def check_alive(self) -> None:
        dead = [n for n, sp in self.procs.items() if sp.proc is not None and not sp.alive()]
        if dead:
            raise AssertionError(f"service(s) {dead} exited\n" + "\n".join(self.log_tail(n) for n in dead))

    def stop_all(self) -> dict[str, int | None]:
        """SIGTERM everything (graceful), SIGKILL what does not exit; returns the exit codes."""
        for sp in self.procs.values():
            if sp.alive():
                assert sp.proc is not None
                sp.proc.send_signal(signal.SIGTERM)
        codes: dict[str, int | None] = {}
        for sp in self.procs.values():
            if sp.proc is None:
                continue
            try:
                codes[sp.name] = sp.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(sp.proc.pid, signal.SIGKILL)
                codes[sp.name] = sp.proc.wait(30)
        return codes

    def cli(self, *args: str, timeout_s: float) -> subprocess.CompletedProcess[str]:
        """`synscale ARGS` as a user runs it: its own process, talking gRPC to the services."""
        try:
            return subprocess.run([sys.executable, "-m", "synscale.cli", *args], env=self.env, text=True,
                                  capture_output=True, timeout=timeout_s)
        except subprocess.TimeoutExpired as exc:
            out = (exc.stdout or b"").decode(errors="replace") if isinstance(exc.stdout, bytes) \
                else (exc.stdout or "")
            raise AssertionError(f"`synscale {' '.join(args)}` still running after {timeout_s:.0f}s\n"
                                 f"{out[-2000:]}\n{self.logs()}") from None

    def log_tail(self, name: str, chars: int = 3000) -> str:
        path = self.procs[name].log_path
        text = path.read_text(errors="replace") if path.exists() else ""
        return f"--- {name} log (last {chars} chars) ---\n{text[-chars:]}"

    def logs(self) -> str:
        return "\n".join(self.log_tail(n) for n in self.services)




# -- a study's artifacts --------------------------------------------------------------------

def _is_bookkeeping(rel: str) -> bool:
    """Analyzer state and caches: how the work was scheduled, not what it produced."""
    return rel.startswith(("state/", "cache/")) or "/state/" in rel or "/cache/" in rel


def study_artifacts(store: ObjectStore, study_id: str) -> dict[str, str]:
    """{key below the study prefix: sha256} for every artifact a study produced."""
    prefix = layout.study_prefix(study_id) + "/"
    out: dict[str, str] = {}
    for info in store.list(prefix):
        rel = info.key[len(prefix):]
        if _is_bookkeeping(rel):
            continue
        stat = store.stat(info.key)
        assert stat is not None, info.key
        out[rel] = stat.sha256
    return out


def shard_keys(store: ObjectStore, study_id: str) -> list[str]:
    listed = store.list(layout.images_prefix(study_id))
    return sorted(o.key for o in listed if layout.parse_shard_key(o.key) is not None)


def sample_counts(store: ObjectStore, study_id: str) -> Counter[tuple[str, float, str, str, int]]:
    """How often each image (generator, cfg, strategy, class_id, index) occurs across all shards."""
    counts: Counter[tuple[str, float, str, str, int]] = Counter()
    for key in shard_keys(store, study_id):
        problems: list[Any] = []
        for sample in iter_shard(store.get(key), problems):
            m = sample.meta
            assert sample.key == ids.sample_key(m["class_id"], m["index"]), (key, sample.key)
            counts[(m["generator"], float(m["cfg"]), m["strategy"], m["class_id"], int(m["index"]))] += 1
        assert not problems, f"{key}: {problems}"
    return counts


@contextmanager
def running(d: Deployment) -> Iterator[Deployment]:
    """The deployment's five processes started and SERVING; stopped (SIGTERM) afterwards."""
    d.start_all()
    try:
        d.wait_ready()
        yield d
    finally:
        d.stop_all()


# -- each service in its own virtualenv, as its Dockerfile installs it ---------------------

REPO = Path(__file__).resolve().parents[2]


def base_site_view(target: Path) -> Path:
    """The test interpreter's third-party packages without any synscale distribution.

    A folder of symlinks to every entry of this venv's site-packages except synscale's own
    (editable) packages and .pth hooks: the "base image" that holds torch and friends once,
    so per-service venvs install only `shared` and their service on top.
    """
    import sysconfig

    site = Path(sysconfig.get_paths()["purelib"])
    target.mkdir(parents=True, exist_ok=True)
    for entry in site.iterdir():
        low = entry.name.lower()
        if low.startswith(("synscale", "__editable__", "_synscale")) or low.endswith(".pth"):
            continue
        (target / entry.name).symlink_to(entry)
    return target


def service_venv(name: str, root: Path, base: Path) -> Path:
    """`root/<name>`: a venv with `shared` and `services/<name>` installed from their
    pyprojects (not editable, no dependencies resolved: those come from `base`)."""
    import shutil

    venv = root / name
    base_python = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base_python, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    (Path(site) / "_base_image.pth").write_text(f"{base}\n")
    src = root / f"src-{name}"
    ignore = shutil.ignore_patterns("*.egg-info", "build", "__pycache__")
    for rel in ("shared", f"services/{name}"):
        shutil.copytree(REPO / rel, src / rel, ignore=ignore)
    done = subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                           "--no-index", str(src / "shared"), str(src / "services" / name)],
                          capture_output=True, text=True)
    assert done.returncode == 0, f"installing {name} into {venv}: {done.stdout}{done.stderr}"
    return python
