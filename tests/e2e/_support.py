"""What the end-to-end tests share: the five service processes, waiting, a study's artifacts.

Kept out of the test modules so a test reads as the scenario it checks. Test modules load
this file by path (see `_load_support` in test_distributed_services.py) because
tests/e2e is not a package and pytest runs with --import-mode=importlib.
"""

from __future__ import annotations

import json
import os
import shutil
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

import yaml

from synscale import ids, layout
from synscale.grpc_server import check_health
from synscale.plan import plan_runs, study_classes
from synscale.shards import iter_shard
from synscale.store.base import ObjectStore
from synscale.store.file import FileStore
from synscale.study import StudySpec, parse_study

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


# -- the toy study, and what the embedded runtime makes of it -------------------------------

TOY = Path(__file__).resolve().parents[2] / "examples" / "toy.yaml"
STUDY_TIMEOUT_S = 1500  # a hang guard, not a speed check (a loaded 2-core CI box is slow)
# Images per generation job and shard (the prompter's SYNSCALE_SHARD_SIZE), in both runtimes:
# two shards per class, so a cell spans several shards and a fault injected part-way finds
# most jobs still to do, however fast the generator samples.
SHARD_SIZE = "4"


@dataclass(frozen=True)
class Expected:
    """What the embedded runtime produced for the study."""

    spec: StudySpec
    path: Path
    artifacts: dict[str, str]  # key below the study prefix -> sha256
    report: dict[str, Any]
    results: dict[str, Any]  # runs/<id>/result.json -> its content without wall-clock fields
    images: Counter[tuple[str, float, str, str, int]]


def every_image_once(spec: StudySpec) -> Counter[tuple[str, float, str, str, int]]:
    """Each (generator, cfg, strategy, class, index) of the study, once."""
    return Counter({(g.name, float(cfg), strategy, class_id, i): 1
                    for g in spec.generators for cfg in g.cfg for strategy in spec.strategies
                    for class_id in study_classes(spec).ids for i in range(spec.max_images_per_class)})


def study_spec() -> StudySpec:
    """examples/toy.yaml (the CI study) with one CFG value instead of two.

    This module runs the study three times (embedded, distributed, distributed with a
    kill), so it halves the toy's generation and synthetic training; everything else —
    classes, sizes, the real baseline, recipe, evaluation, analysis — is the toy's.
    """
    data = yaml.safe_load(TOY.read_text())
    data["name"] = "toy-distributed"
    data["generators"][0]["cfg"] = [2.0]
    return parse_study(yaml.safe_dump(data, sort_keys=False), f"{TOY} (one CFG value)")


def embedded_expected(study_dir: Path, data: Path) -> Expected:
    """Run the study embedded (one process, MemoryBus + FileStore): what every deployment must match."""
    from synscale.embedded import run_study

    spec = study_spec()
    path = study_dir / "toy.yaml"
    path.write_text(spec.to_yaml())
    previous = os.environ.get("SYNSCALE_SHARD_SIZE")
    os.environ["SYNSCALE_SHARD_SIZE"] = SHARD_SIZE
    try:
        outcome = run_study(spec, data, progress=False)
    finally:
        if previous is None:
            os.environ.pop("SYNSCALE_SHARD_SIZE", None)
        else:
            os.environ["SYNSCALE_SHARD_SIZE"] = previous
    assert outcome.state == "done", outcome.dead_letters
    assert outcome.report_json is not None
    store = FileStore(data / "store", "synscale")
    images = sample_counts(store, spec.study_id)
    assert images == every_image_once(spec), "the embedded run itself is incomplete"
    assert len(shard_keys(store, spec.study_id)) == len(images) // int(SHARD_SIZE)
    artifacts = study_artifacts(store, spec.study_id)
    results = run_results(store, spec.study_id, artifacts)
    assert len(results) == len(plan_runs(spec, "synscale")), "the embedded run trained too few models"
    return Expected(spec, path, artifacts, json.loads(outcome.report_json.read_bytes()), results, images)


def report_of(store: Any, study_id: str) -> dict[str, Any]:
    return json.loads(store.get(layout.report_key(study_id, "report.json")))


# A training run records its wall-clock time and the bucket it read from, in result.json and
# in checkpoint.pt: the only bytes a deployment may change. Everything else must be identical.
RUN_RECORDS = ("/result.json", "/checkpoint.pt")


def without_wall_clock(doc: Any) -> Any:
    """A run's result.json minus durations (`*_seconds`) and the bucket name."""
    if isinstance(doc, dict):
        return {k: without_wall_clock(v) for k, v in doc.items()
                if not k.endswith("_seconds") and k != "bucket"}
    if isinstance(doc, list):
        return [without_wall_clock(v) for v in doc]
    return doc


def run_results(store: Any, study_id: str, artifacts: dict[str, str]) -> dict[str, Any]:
    prefix = layout.study_prefix(study_id) + "/"
    return {k: without_wall_clock(json.loads(store.get(prefix + k)))
            for k in artifacts if k.startswith("runs/") and k.endswith("/result.json")}


def assert_same_as_embedded(store: Any, expected: Expected, logs: str) -> None:
    study_id = expected.spec.study_id
    assert report_of(store, study_id) == expected.report, logs[-6000:]
    images = sample_counts(store, study_id)
    duplicated = {k: n for k, n in images.items() if n > 1}
    missing = set(expected.images) - set(images)
    assert not duplicated and not missing, (
        f"duplicated {sorted(duplicated)[:5]}, missing {sorted(missing)[:5]}")
    assert images == expected.images
    artifacts = study_artifacts(store, study_id)
    assert sorted(artifacts) == sorted(expected.artifacts)
    differing = sorted(k for k in artifacts if artifacts[k] != expected.artifacts[k]
                       and not (k.startswith("runs/") and k.endswith(RUN_RECORDS)))
    assert not differing, f"same keys, other bytes: {differing[:10]}"
    assert run_results(store, study_id, artifacts) == expected.results


# -- a Kafka broker and a MinIO server of the test's own, to stop and start at will -----------

class PrivateInfra:
    """Kafka + MinIO from deploy/local/launcher.py on free ports and a private data folder.

    The session's servers are shared by every test, so outage tests bring their own: they
    stop MinIO (SIGTERM) or SIGKILL the broker mid-study and start them again on the same
    data directory, as an operator restarting a crashed server would.
    """

    def __init__(self, run_dir: Path) -> None:
        from synscale.testing.modules import load_module

        self.launcher = load_module("synscale_launcher", Path(__file__).resolve().parents[2]
                                    / "deploy" / "local" / "launcher.py")
        env = os.environ
        self.lay = self.launcher.Layout(
            cache=Path(env.get("SYNSCALE_CACHE", Path.home() / ".cache" / "synscale")), run=run_dir,
            kafka_port=free_port(), controller_port=free_port(), minio_port=free_port(),
            console_port=free_port())
        self.env: dict[str, str] = {}

    def up(self) -> dict[str, str]:
        self.lay.run.mkdir(parents=True, exist_ok=True)
        self.launcher.fetch_kafka(self.lay)
        self.launcher.build_minio(self.lay)
        self.launcher.start_kafka(self.lay)
        self.launcher.start_minio(self.lay)
        self.launcher.wait_healthy(self.lay, timeout_s=300)
        lines = "\n".join(self.launcher.env_lines(self.lay))
        for line in lines.splitlines():
            k, _, v = line.removeprefix("export ").partition("=")
            self.env[k] = v
        return self.env

    def _pid(self, name: str) -> int | None:
        pid: int | None = self.launcher._pid_alive(self.lay.run / f"{name}.pid")
        return pid

    def _signal(self, name: str, sig: signal.Signals) -> None:
        """Send `sig` to the server's process group and wait until the process is gone.

        The launcher's processes are children of this test process when it started them,
        so they are reaped here (a zombie would still answer `kill -0`).
        """
        pid = self._pid(name)
        assert pid is not None, f"{name} is not running"
        os.killpg(pid, sig)

        def gone() -> bool:
            try:
                return os.waitpid(pid, os.WNOHANG)[0] == pid
            except ChildProcessError:  # not our child: the launcher's liveness check
                return self._pid(name) is None

        try:
            wait_for(gone, 30, f"{name} to exit on {sig.name}")
        except AssertionError:
            os.killpg(pid, signal.SIGKILL)
            wait_for(gone, 30, f"{name} to exit on SIGKILL")
        (self.lay.run / f"{name}.pid").unlink(missing_ok=True)

    def stop_minio(self) -> None:
        """SIGTERM MinIO and wait until it is gone (its data stays)."""
        self._signal("minio", signal.SIGTERM)

    def kill_kafka(self) -> None:
        """SIGKILL the broker: no clean shutdown, its log directory stays as it was."""
        self._signal("kafka", signal.SIGKILL)

    def start_minio(self) -> None:
        self.launcher.start_minio(self.lay)
        wait_for(lambda: self.launcher.minio_healthy(self.lay), 120, "MinIO to answer again")

    def start_kafka(self) -> None:
        self.launcher.start_kafka(self.lay)
        wait_for(lambda: self.launcher.kafka_healthy(self.lay), 300, "the broker to answer again",
                 interval_s=1)

    def down(self) -> None:
        for name in ("minio", "kafka"):
            if self._pid(name) is not None:
                self._signal(name, signal.SIGTERM)
        shutil.rmtree(self.lay.run, ignore_errors=True)


def dead_letters(bootstrap: str, prefix: str) -> list[Any]:
    """Every dead letter of every topic of a deployment (synscale.dlq, as the CLI reads them)."""
    from synscale.config import Topics
    from synscale.dlq import dlq_topics, read_letters

    return list(read_letters(bootstrap, dlq_topics(Topics(prefix=prefix)), timeout_s=5))


def health(deployment: Deployment) -> dict[str, bool]:
    """SERVING or not, per service, right now."""
    return {name: check_health(sp.address, timeout_s=2) for name, sp in deployment.procs.items()}
