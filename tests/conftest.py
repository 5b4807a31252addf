"""Fixtures shared by every test folder.

`infra_env` gives the endpoints of a real Kafka broker and a real MinIO server: those in
KAFKA_BOOTSTRAP_SERVERS / S3_ENDPOINT when set (as `make test` does), otherwise the
local launcher starts both for this session and stops them afterwards. `kubeconfig` does
the same for a real etcd + kube-apiserver (tests marked `kube`), and `chart` is the Helm
chart loaded for offline rendering (the chart tests, and the kube tests that apply its RBAC).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
LAUNCHER = ROOT / "deploy" / "local" / "launcher.py"
CHART = ROOT / "k8s" / "synscale"


def _parse_env(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        line = line.removeprefix("export ").strip()
        if "=" in line:
            k, _, v = line.partition("=")
            out[k] = v
    return out


@pytest.fixture(scope="session")
def infra_env() -> Iterator[dict[str, str]]:
    keys = ("KAFKA_BOOTSTRAP_SERVERS", "S3_ENDPOINT", "S3_ACCESS_KEY", "S3_SECRET_KEY")
    if all(os.environ.get(k) for k in keys):
        yield {k: os.environ[k] for k in keys}
        return
    run_dir = ROOT / ".infra-pytest"
    env = {**os.environ, "SYNSCALE_INFRA_DIR": str(run_dir),
           "SYNSCALE_KAFKA_PORT": "19192", "SYNSCALE_KAFKA_CONTROLLER_PORT": "19193",
           "SYNSCALE_MINIO_PORT": "19100", "SYNSCALE_MINIO_CONSOLE_PORT": "19101"}
    up = subprocess.run([sys.executable, str(LAUNCHER), "up"], env=env, capture_output=True, text=True)
    if up.returncode != 0:
        pytest.fail(f"could not start Kafka and MinIO:\n{up.stderr[-3000:]}")
    try:
        yield _parse_env(up.stdout)
    finally:
        subprocess.run([sys.executable, str(LAUNCHER), "down", "--wipe"], env=env, capture_output=True)


@pytest.fixture
def unique() -> str:
    """A fresh suffix for topic, group and bucket names so tests never share state."""
    return uuid.uuid4().hex[:10]


@pytest.fixture
def kafka_bus(infra_env: dict[str, str]):  # type: ignore[no-untyped-def]
    from synscale.bus.kafka import KafkaBus

    bus = KafkaBus(infra_env["KAFKA_BOOTSTRAP_SERVERS"], session_timeout_ms=3000)
    yield bus
    bus.close()


@pytest.fixture
def minio_store(infra_env: dict[str, str], unique: str):  # type: ignore[no-untyped-def]
    from synscale.store.minio import MinioStore

    return MinioStore(infra_env["S3_ENDPOINT"], infra_env["S3_ACCESS_KEY"],
                      infra_env["S3_SECRET_KEY"], f"test-{unique}")


@pytest.fixture(scope="session")
def kubeconfig() -> Iterator[Path]:
    """A kubeconfig for a real kube-apiserver + etcd, started only when a `kube` test runs.

    SYNSCALE_TEST_KUBECONFIG names a running one (never KUBECONFIG: that may be a real
    cluster). Otherwise the launcher builds both once from source (cached; many minutes
    the first time, see docs/adr/0026-local-kube-apiserver.md) and starts them here.
    """
    given = os.environ.get("SYNSCALE_TEST_KUBECONFIG")
    if given:
        yield Path(given)
        return
    env = {**os.environ, "SYNSCALE_INFRA_DIR": str(ROOT / ".infra-kube-pytest")}
    up = subprocess.run([sys.executable, str(LAUNCHER), "up", "--kube-only"], env=env,
                        capture_output=True, text=True)
    if up.returncode != 0:
        pytest.fail(f"could not start etcd and kube-apiserver:\n{up.stderr[-3000:]}")
    try:
        yield Path(_parse_env(up.stdout)["KUBECONFIG"])
    finally:
        subprocess.run([sys.executable, str(LAUNCHER), "down", "--wipe"], env=env, capture_output=True)


@pytest.fixture(scope="session")
def chart_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The chart as after `helm dependency build`, with an empty stand-in for MinIO.

    The MinIO subchart is not vendored (fetching it needs network); a stub with the
    declared name and version lets lint check everything of ours and lets renders with
    minio.enabled run. The subchart's own manifests are upstream's to validate.
    """
    dest = tmp_path_factory.mktemp("chart") / "synscale"
    shutil.copytree(CHART, dest)
    deps = yaml.safe_load((CHART / "Chart.yaml").read_text())["dependencies"]
    minio = next(d for d in deps if d["name"] == "minio")
    stub = dest / "charts" / "minio"
    stub.mkdir(parents=True)
    (stub / "Chart.yaml").write_text(
        f"apiVersion: v2\nname: minio\nversion: {minio['version']}\ntype: application\n")
    return dest


@pytest.fixture(scope="session")
def chart(chart_dir: Path) -> Iterator[Any]:
    """The loaded chart (helm-python-sdk), for rendering offline."""
    import helm_python as helm

    with helm.Chart.load(chart_dir) as loaded:
        yield loaded
