#!/usr/bin/env python3
"""Start, health-check and stop a real Apache Kafka broker and a real MinIO server.

No Docker engine is needed: Kafka runs from its Maven Central jars with `java`, MinIO is
built from source with `go install`. Both binaries are cached (SYNSCALE_CACHE, default
~/.cache/synscale) so only the first run pays for fetching and building. State lives in
a run folder (SYNSCALE_INFRA_DIR, default ./.infra) holding data, logs, pids and an
`env` file with the endpoints and the generated credentials.

With `--kube` (or SYNSCALE_KUBE=1) it also starts a real etcd and kube-apiserver, built
from source the same way (deploy/local/kubeapi.py), and exports KUBECONFIG.

    python deploy/local/launcher.py up|down|status|env|fetch [--kube]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import kubeapi  # noqa: E402  (beside this script, which runs without the package installed)


def _versions() -> dict[str, str]:
    out = {}
    for line in (HERE / "versions.env").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            k, _, v = line.partition("=")
            out[k] = v
    return out


VERSIONS = _versions()


@dataclass
class Layout:
    cache: Path
    run: Path
    kafka_port: int
    controller_port: int
    minio_port: int
    console_port: int

    @classmethod
    def from_env(cls) -> Layout:
        env = os.environ
        return cls(
            cache=Path(env.get("SYNSCALE_CACHE", Path.home() / ".cache" / "synscale")),
            run=Path(env.get("SYNSCALE_INFRA_DIR", ".infra")).resolve(),
            kafka_port=int(env.get("SYNSCALE_KAFKA_PORT", "19092")),
            controller_port=int(env.get("SYNSCALE_KAFKA_CONTROLLER_PORT", "19093")),
            minio_port=int(env.get("SYNSCALE_MINIO_PORT", "19000")),
            console_port=int(env.get("SYNSCALE_MINIO_CONSOLE_PORT", "19001")),
        )

    @property
    def kafka_libs(self) -> Path:
        return self.cache / f"kafka-{VERSIONS['KAFKA_VERSION']}" / "libs"

    @property
    def minio_bin(self) -> Path:
        return self.cache / f"minio-{VERSIONS['MINIO_VERSION']}" / "minio"

    @property
    def env_file(self) -> Path:
        return self.run / "env"

    @property
    def kube(self) -> kubeapi.KubeLayout:
        return kubeapi.KubeLayout.from_env(self.cache, self.run, VERSIONS)


def log(msg: str) -> None:
    print(f"[infra] {msg}", file=sys.stderr, flush=True)


# -- fetching and building ----------------------------------------------------------

def fetch_kafka(lay: Layout) -> None:
    marker = lay.kafka_libs / ".complete"
    if marker.exists():
        return
    if not shutil.which("mvn"):
        sys.exit("Maven (mvn) is needed once to fetch Kafka from Maven Central; install it")
    log(f"fetching Apache Kafka {VERSIONS['KAFKA_VERSION']} jars from Maven Central (once)")
    tmp = lay.kafka_libs.with_name("libs.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    subprocess.run(
        ["mvn", "-q", "-B", "-f", str(HERE / "kafka" / "pom.xml"), "dependency:copy-dependencies",
         f"-Dkafka.version={VERSIONS['KAFKA_VERSION']}", f"-DoutputDirectory={tmp}",
         "-DincludeScope=runtime"],
        check=True,
    )
    shutil.rmtree(lay.kafka_libs, ignore_errors=True)
    tmp.rename(lay.kafka_libs)
    marker.touch()


def build_minio(lay: Layout) -> None:
    if lay.minio_bin.exists():
        return
    if not shutil.which("go"):
        sys.exit("Go is needed once to build the MinIO server from source; install it")
    module = f"{VERSIONS['MINIO_MODULE']}@{VERSIONS['MINIO_VERSION']}"
    log(f"building MinIO {module} with go install (once; takes minutes)")
    gobin = lay.minio_bin.parent / "partial"
    gobin.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "GOBIN": str(gobin), "CGO_ENABLED": "0"}
    subprocess.run(["go", "install", module], check=True, env=env)
    (gobin / "minio").rename(lay.minio_bin)
    shutil.rmtree(gobin, ignore_errors=True)


# -- processes ------------------------------------------------------------------------

def _pid_alive(pidfile: Path) -> int | None:
    try:
        pid = int(pidfile.read_text())
        os.kill(pid, 0)
        return pid
    except (FileNotFoundError, ValueError, ProcessLookupError, PermissionError):
        return None


def _spawn(cmd: list[str], logfile: Path, pidfile: Path, env: dict[str, str] | None = None) -> None:
    logfile.parent.mkdir(parents=True, exist_ok=True)
    with open(logfile, "ab") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, env=env,
        )
    pidfile.write_text(str(proc.pid))


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def start_kafka(lay: Layout) -> None:
    pidfile = lay.run / "kafka.pid"
    if _pid_alive(pidfile):
        return
    if _port_open(lay.kafka_port):
        sys.exit(f"port {lay.kafka_port} is taken by another process; set SYNSCALE_KAFKA_PORT")
    data = lay.run / "kafka-data"
    props = lay.run / "server.properties"
    props.write_text("\n".join([
        "process.roles=broker,controller",
        "node.id=1",
        f"controller.quorum.voters=1@127.0.0.1:{lay.controller_port}",
        f"listeners=PLAINTEXT://127.0.0.1:{lay.kafka_port},CONTROLLER://127.0.0.1:{lay.controller_port}",
        f"advertised.listeners=PLAINTEXT://127.0.0.1:{lay.kafka_port}",
        "controller.listener.names=CONTROLLER",
        "inter.broker.listener.name=PLAINTEXT",
        "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        f"log.dirs={data}",
        "num.partitions=6",
        "offsets.topic.replication.factor=1",
        "offsets.topic.num.partitions=6",
        "transaction.state.log.replication.factor=1",
        "transaction.state.log.min.isr=1",
        "share.coordinator.state.topic.replication.factor=1",
        "share.coordinator.state.topic.min.isr=1",
        "group.initial.rebalance.delay.ms=0",
        "group.min.session.timeout.ms=1000",
        "auto.create.topics.enable=true",
        "message.max.bytes=8388608",
        "",
    ]))
    classpath = f"{lay.kafka_libs}/*"
    java = [
        "java", "-Xms256m", "-Xmx768m", "-XX:+UseG1GC", "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={HERE / 'log4j2.properties'}", "-cp", classpath,
    ]
    if not (data / "meta.properties").exists():
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        subprocess.run(
            [*java, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(props)],
            check=True, stdout=subprocess.DEVNULL,
        )
    _spawn([*java, "kafka.Kafka", str(props)], lay.run / "kafka.log", pidfile)


def _credentials(lay: Layout) -> tuple[str, str]:
    cred = lay.run / "minio-credentials.json"
    if cred.exists():
        data = json.loads(cred.read_text())
        return data["access_key"], data["secret_key"]
    access, secret = f"synscale-{secrets.token_hex(4)}", secrets.token_urlsafe(24)
    cred.write_text(json.dumps({"access_key": access, "secret_key": secret}))
    cred.chmod(0o600)
    return access, secret


def start_minio(lay: Layout) -> None:
    pidfile = lay.run / "minio.pid"
    if _pid_alive(pidfile):
        return
    if _port_open(lay.minio_port):
        sys.exit(f"port {lay.minio_port} is taken by another process; set SYNSCALE_MINIO_PORT")
    access, secret = _credentials(lay)
    env = {**os.environ, "MINIO_ROOT_USER": access, "MINIO_ROOT_PASSWORD": secret,
           "MINIO_BROWSER": "off", "MINIO_UPDATE": "off"}
    _spawn(
        [str(lay.minio_bin), "server", str(lay.run / "minio-data"), "--quiet",
         "--address", f"127.0.0.1:{lay.minio_port}",
         "--console-address", f"127.0.0.1:{lay.console_port}"],
        lay.run / "minio.log", pidfile, env,
    )


# -- health -------------------------------------------------------------------------

def kafka_healthy(lay: Layout) -> bool:
    try:
        from kafka import KafkaAdminClient
    except ImportError:  # launcher used without the venv: a port check is the best we can do
        return _port_open(lay.kafka_port)
    try:
        admin = KafkaAdminClient(bootstrap_servers=f"127.0.0.1:{lay.kafka_port}",
                                 request_timeout_ms=3000)
        try:
            admin.list_topics()
            return True
        finally:
            admin.close()
    except Exception:
        return False


def minio_healthy(lay: Layout) -> bool:
    try:
        url = f"http://127.0.0.1:{lay.minio_port}/minio/health/ready"
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status == 200
    except Exception:
        return False


def etcd_healthy(lay: Layout) -> bool:
    return kubeapi.etcd_healthy(lay.kube)


def apiserver_healthy(lay: Layout) -> bool:
    return kubeapi.apiserver_healthy(lay.kube)


CHECKS = {"kafka": kafka_healthy, "minio": minio_healthy}
KUBE_CHECKS = {"etcd": etcd_healthy, "kube-apiserver": apiserver_healthy}


def start_kube(lay: Layout) -> None:
    """etcd, then kube-apiserver (which waits for etcd itself); no kubelet, no nodes."""
    kube = lay.kube
    kubeapi.make_pki(kube)
    kubeapi.write_kubeconfig(kube)
    for name, port, cmd in (
        ("etcd", kube.etcd_port, kubeapi.etcd_command(kube)),
        ("kube-apiserver", kube.apiserver_port, kubeapi.apiserver_command(kube)),
    ):
        pidfile = lay.run / f"{name}.pid"
        if _pid_alive(pidfile):
            continue
        if _port_open(port):
            sys.exit(f"port {port} ({name}) is taken by another process; set "
                     f"SYNSCALE_{'ETCD' if name == 'etcd' else 'KUBE_APISERVER'}_PORT")
        _spawn(cmd, lay.run / f"{name}.log", pidfile)


def wait_healthy(lay: Layout, timeout_s: float = 120.0, kube: bool = False, infra: bool = True) -> None:
    deadline = time.monotonic() + timeout_s
    pending = {**(CHECKS if infra else {}), **(KUBE_CHECKS if kube else {})}
    while pending and time.monotonic() < deadline:
        for name, check in list(pending.items()):
            if not _pid_alive(lay.run / f"{name}.pid"):
                tail = (lay.run / f"{name}.log").read_text(errors="replace")[-2000:]
                sys.exit(f"{name} exited during start-up; last log lines:\n{tail}")
            if check(lay):
                log(f"{name} is healthy")
                del pending[name]
        time.sleep(0.5)
    if pending:
        sys.exit(f"not healthy after {timeout_s:.0f}s: {', '.join(pending)} (logs in {lay.run})")


def kube_running(lay: Layout) -> bool:
    return _pid_alive(lay.run / "kube-apiserver.pid") is not None


def env_lines(lay: Layout) -> list[str]:
    access, secret = _credentials(lay)
    lines = [
        f"export KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:{lay.kafka_port}",
        f"export S3_ENDPOINT=127.0.0.1:{lay.minio_port}",
        f"export S3_ACCESS_KEY={access}",
        f"export S3_SECRET_KEY={secret}",
        "export S3_SECURE=false",
    ]
    if kube_running(lay):
        lines += kubeapi.env_lines(lay.kube)
    return lines


def up(lay: Layout, kube: bool = False, kube_only: bool = False) -> None:
    lay.run.mkdir(parents=True, exist_ok=True)
    kube = kube or kube_only
    if not kube_only:
        fetch_kafka(lay)
        build_minio(lay)
    if kube:
        kubeapi.build(lay.kube)
    t0 = time.monotonic()
    if not kube_only:
        start_kafka(lay)
        start_minio(lay)
    if kube:
        start_kube(lay)
    wait_healthy(lay, kube=kube, infra=not kube_only)
    if kube_only:
        log(f"up in {time.monotonic() - t0:.1f}s: kube-apiserver https://127.0.0.1:{lay.kube.apiserver_port}")
        return
    lay.env_file.write_text("\n".join(env_lines(lay)) + "\n")
    lay.env_file.chmod(0o600)
    extra = f", kube-apiserver https://127.0.0.1:{lay.kube.apiserver_port}" if kube else ""
    log(f"up in {time.monotonic() - t0:.1f}s: Kafka 127.0.0.1:{lay.kafka_port}, "
        f"MinIO http://127.0.0.1:{lay.minio_port}{extra}; `source {lay.env_file}` for the endpoints")


def _stop(pidfile: Path, name: str, grace_s: float = 20.0) -> None:
    pid = _pid_alive(pidfile)
    if pid is None:
        pidfile.unlink(missing_ok=True)
        return
    os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and _pid_alive(pidfile):
        time.sleep(0.2)
    if _pid_alive(pidfile):
        log(f"{name} did not stop in {grace_s:.0f}s; killing it")
        os.killpg(pid, signal.SIGKILL)
    pidfile.unlink(missing_ok=True)
    log(f"{name} stopped")


def down(lay: Layout, wipe: bool = False) -> None:
    _stop(lay.run / "kube-apiserver.pid", "kube-apiserver")
    _stop(lay.run / "etcd.pid", "etcd")
    _stop(lay.run / "minio.pid", "minio")
    _stop(lay.run / "kafka.pid", "kafka")
    if wipe:
        shutil.rmtree(lay.run, ignore_errors=True)


def status(lay: Layout) -> int:
    ok = True
    checks = {**CHECKS, **(KUBE_CHECKS if (lay.run / "etcd.pid").exists() else {})}
    for name, check in checks.items():
        alive = _pid_alive(lay.run / f"{name}.pid") is not None
        healthy = alive and check(lay)
        ok &= healthy
        print(f"{name}: {'healthy' if healthy else 'running, not healthy' if alive else 'stopped'}")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=["up", "down", "status", "env", "fetch"])
    parser.add_argument("--wipe", action="store_true", help="with down: delete data and logs")
    parser.add_argument("--kube", action="store_true",
                        default=os.environ.get("SYNSCALE_KUBE", "0").lower() in {"1", "true", "yes"},
                        help="with up/fetch: also etcd + kube-apiserver (default: SYNSCALE_KUBE=1)")
    parser.add_argument("--kube-only", action="store_true",
                        help="with up/fetch: only etcd + kube-apiserver (prints KUBECONFIG)")
    args = parser.parse_args(argv)
    lay = Layout.from_env()
    if args.command == "fetch":
        if not args.kube_only:
            fetch_kafka(lay)
            build_minio(lay)
        if args.kube or args.kube_only:
            kubeapi.build(lay.kube)
    elif args.command == "up":
        up(lay, kube=args.kube, kube_only=args.kube_only)
        print("\n".join(kubeapi.env_lines(lay.kube) if args.kube_only else env_lines(lay)))
    elif args.command == "down":
        down(lay, wipe=args.wipe)
    elif args.command == "status":
        return status(lay)
    elif args.command == "env":
        print("\n".join(env_lines(lay)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
