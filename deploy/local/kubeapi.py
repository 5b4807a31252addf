"""A real etcd + kube-apiserver for tests that talk to Kubernetes (no kubelet, no nodes).

Both are built from source once with Go from the module proxy and cached beside Kafka
and MinIO (docs/adr/0026-local-kube-apiserver.md). `k8s.io/kubernetes` cannot be built
with a plain `go install`: its go.mod points the staging modules (k8s.io/api,
apimachinery, apiserver, client-go, ...) at ./staging, which a module download does not
have, so a small wrapper module requires it and replaces every staging module with the
published v0.N.M that matches v1.N.M. The same module pins etcd's server, whose main
package builds the etcd binary, at the version Kubernetes itself is tested with.

The API server runs with a static bearer token (group system:masters), RBAC
authorization (so a test can check that the chart's Role is enough, by impersonating its
service account) and a self-signed serving certificate (openssl); the launcher writes a
kubeconfig for it.
Used by deploy/local/launcher.py (`up --kube`, or SYNSCALE_KUBE=1).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

# kube-apiserver links ~1 GB of objects: two parallel compiles keep a 2-core, shared
# machine usable (measured in docs/adr/0026-local-kube-apiserver.md).
_GO_BUILD_PARALLELISM = "2"


@dataclass(frozen=True)
class KubeLayout:
    cache: Path
    run: Path
    etcd_port: int
    etcd_peer_port: int
    apiserver_port: int
    kubernetes_version: str
    etcd_version: str

    @classmethod
    def from_env(cls, cache: Path, run: Path, versions: dict[str, str]) -> KubeLayout:
        env = os.environ
        return cls(
            cache=cache,
            run=run,
            etcd_port=int(env.get("SYNSCALE_ETCD_PORT", "12379")),
            etcd_peer_port=int(env.get("SYNSCALE_ETCD_PEER_PORT", "12380")),
            apiserver_port=int(env.get("SYNSCALE_KUBE_APISERVER_PORT", "16443")),
            kubernetes_version=versions["KUBERNETES_VERSION"],
            etcd_version=versions["ETCD_VERSION"],
        )

    @property
    def bin_dir(self) -> Path:
        return self.cache / f"kube-{self.kubernetes_version}-etcd-{self.etcd_version}"

    @property
    def apiserver_bin(self) -> Path:
        return self.bin_dir / "kube-apiserver"

    @property
    def etcd_bin(self) -> Path:
        return self.bin_dir / "etcd"

    @property
    def pki(self) -> Path:
        return self.run / "kube-pki"

    @property
    def kubeconfig(self) -> Path:
        return self.run / "kubeconfig"


def log(msg: str) -> None:
    print(f"[infra] {msg}", file=sys.stderr, flush=True)


# -- building -------------------------------------------------------------------------

def _staging_modules(kubernetes_go_mod: str) -> list[str]:
    """The modules k8s.io/kubernetes's go.mod replaces with its ./staging directories."""
    return sorted(set(re.findall(r"^\s*(k8s\.io/[\w.-]+)\s*=>\s*\./staging/", kubernetes_go_mod, re.M)))


def wrapper_go_mod(lay: KubeLayout, kubernetes_go_mod: str) -> str:
    """The go.mod of the wrapper module that builds both binaries (staging pinned)."""
    staging = "v0." + lay.kubernetes_version.removeprefix("v1.")
    lines = [
        "module synscale.local/kubebuild", "", "go 1.25.0", "",
        "require (",
        f"\tgo.etcd.io/etcd/server/v3 {lay.etcd_version}",
        f"\tk8s.io/kubernetes {lay.kubernetes_version}",
        ")", "", "replace (",
    ]
    lines += [f"\t{m} => {m} {staging}" for m in _staging_modules(kubernetes_go_mod)]
    lines += [")", ""]
    return "\n".join(lines)


TOOLS_GO = """//go:build tools

// Package kubebuild only pins the two commands the launcher builds.
package kubebuild

import (
\t_ "go.etcd.io/etcd/server/v3"
\t_ "k8s.io/kubernetes/cmd/kube-apiserver"
)
"""


def build(lay: KubeLayout) -> None:
    """Build kube-apiserver and etcd once into the cache (minutes; see the ADR)."""
    if lay.apiserver_bin.exists() and lay.etcd_bin.exists():
        return
    if not shutil.which("go"):
        sys.exit("Go is needed once to build kube-apiserver and etcd from source; install it")
    log(f"building kube-apiserver {lay.kubernetes_version} and etcd {lay.etcd_version} with Go (once; "
        "takes many minutes and ~3 GB of memory)")
    t0 = time.monotonic()
    env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod"}
    info = subprocess.run(["go", "mod", "download", "-json", f"k8s.io/kubernetes@{lay.kubernetes_version}"],
                          check=True, capture_output=True, text=True, env=env)
    go_mod = Path(json.loads(info.stdout)["GoMod"]).read_text()
    partial = lay.bin_dir.with_name(lay.bin_dir.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    with tempfile.TemporaryDirectory(prefix="kubebuild-") as tmp:
        src = Path(tmp)
        (src / "go.mod").write_text(wrapper_go_mod(lay, go_mod))
        (src / "tools.go").write_text(TOOLS_GO)
        subprocess.run(["go", "mod", "tidy"], cwd=src, check=True, env=env)
        version_flag = f"-X k8s.io/component-base/version.gitVersion={lay.kubernetes_version}"
        for out, pkg, ldflags in (
            ("kube-apiserver", "k8s.io/kubernetes/cmd/kube-apiserver", f"-s -w {version_flag}"),
            ("etcd", "go.etcd.io/etcd/server/v3", "-s -w"),
        ):
            subprocess.run(["go", "build", "-p", _GO_BUILD_PARALLELISM, "-trimpath", "-ldflags", ldflags,
                            "-o", str(partial / out), pkg], cwd=src, check=True, env=env)
    shutil.rmtree(lay.bin_dir, ignore_errors=True)
    partial.rename(lay.bin_dir)
    log(f"built kube-apiserver and etcd in {time.monotonic() - t0:.0f}s")


# -- certificates and credentials ---------------------------------------------------------

def _openssl(*args: str) -> None:
    if not shutil.which("openssl"):
        sys.exit("openssl is needed to make the API server's self-signed certificate; install it")
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_pki(lay: KubeLayout) -> None:
    """A CA, a serving cert for 127.0.0.1/localhost, a service-account key pair, a token."""
    pki = lay.pki
    if (pki / "token").exists():
        return
    pki.mkdir(parents=True, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650",
             "-subj", "/CN=synscale-test-ca", "-keyout", str(pki / "ca.key"), "-out", str(pki / "ca.crt"))
    ext = pki / "serving.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\n"
                   "extendedKeyUsage=serverAuth\n")
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=kube-apiserver",
             "-keyout", str(pki / "serving.key"), "-out", str(pki / "serving.csr"))
    _openssl("x509", "-req", "-in", str(pki / "serving.csr"), "-CA", str(pki / "ca.crt"),
             "-CAkey", str(pki / "ca.key"), "-CAcreateserial", "-days", "3650",
             "-extfile", str(ext), "-out", str(pki / "serving.crt"))
    _openssl("genrsa", "-out", str(pki / "sa.key"), "2048")
    _openssl("rsa", "-in", str(pki / "sa.key"), "-pubout", "-out", str(pki / "sa.pub"))
    token = secrets.token_urlsafe(32)
    (pki / "tokens.csv").write_text(f'{token},synscale-admin,synscale-admin,"system:masters"\n')
    (pki / "token").write_text(token)
    for f in pki.iterdir():
        f.chmod(0o600)


def write_kubeconfig(lay: KubeLayout) -> None:
    import base64

    ca = base64.b64encode((lay.pki / "ca.crt").read_bytes()).decode()
    token = (lay.pki / "token").read_text().strip()
    # JSON is YAML: no YAML library needed where the launcher runs without the venv.
    doc = {
        "apiVersion": "v1", "kind": "Config", "current-context": "synscale-local",
        "clusters": [{"name": "synscale-local", "cluster": {
            "server": f"https://127.0.0.1:{lay.apiserver_port}", "certificate-authority-data": ca}}],
        "users": [{"name": "synscale-admin", "user": {"token": token}}],
        "contexts": [{"name": "synscale-local", "context": {
            "cluster": "synscale-local", "user": "synscale-admin", "namespace": "default"}}],
    }
    lay.kubeconfig.write_text(json.dumps(doc, indent=1) + "\n")
    lay.kubeconfig.chmod(0o600)


# -- processes and health ---------------------------------------------------------------------

def etcd_command(lay: KubeLayout) -> list[str]:
    client = f"http://127.0.0.1:{lay.etcd_port}"
    peer = f"http://127.0.0.1:{lay.etcd_peer_port}"
    return [
        str(lay.etcd_bin), "--name", "synscale", "--data-dir", str(lay.run / "etcd-data"),
        "--listen-client-urls", client, "--advertise-client-urls", client,
        "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
        "--initial-cluster", f"synscale={peer}",
        "--unsafe-no-fsync",  # test data: durability across a machine crash is not needed
        "--log-level", "warn",
    ]


def apiserver_command(lay: KubeLayout) -> list[str]:
    pki = lay.pki
    return [
        str(lay.apiserver_bin),
        f"--etcd-servers=http://127.0.0.1:{lay.etcd_port}",
        "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
        f"--secure-port={lay.apiserver_port}",
        f"--tls-cert-file={pki / 'serving.crt'}", f"--tls-private-key-file={pki / 'serving.key'}",
        f"--token-auth-file={pki / 'tokens.csv'}",
        "--authorization-mode=RBAC",  # the chart's Role is tested, the admin token is a master
        f"--service-account-key-file={pki / 'sa.pub'}",
        f"--service-account-signing-key-file={pki / 'sa.key'}",
        "--service-account-issuer=https://kubernetes.default.svc",
        "--service-cluster-ip-range=10.96.0.0/24",
        f"--cert-dir={pki}",
        "--enable-priority-and-fairness=false",
        "--profiling=false",
        "--v=1",
    ]


def etcd_healthy(lay: KubeLayout) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{lay.etcd_port}/health", timeout=2) as resp:
            return bool(json.loads(resp.read()).get("health") == "true")
    except Exception:
        return False


def apiserver_healthy(lay: KubeLayout) -> bool:
    try:
        ctx = ssl.create_default_context(cafile=str(lay.pki / "ca.crt"))
        req = urllib.request.Request(
            f"https://127.0.0.1:{lay.apiserver_port}/readyz",
            headers={"Authorization": f"Bearer {(lay.pki / 'token').read_text().strip()}"},
        )
        with urllib.request.urlopen(req, timeout=3, context=ctx) as resp:
            return resp.status == 200
    except Exception:
        return False


def env_lines(lay: KubeLayout) -> list[str]:
    return [f"export KUBECONFIG={lay.kubeconfig}"]
