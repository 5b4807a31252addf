"""deploy/local/kubeapi.py without building anything: the wrapper module and the commands.

Building k8s.io/kubernetes outside its repository works only if every staging module its
go.mod points at ./staging is replaced by the published v0.N.M of the same release; these
tests pin that rule and the flags the tests rely on (RBAC enforced, loopback only).
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from synscale.testing.modules import load_module

ROOT = Path(__file__).resolve().parents[3]
GO_MOD = """module k8s.io/kubernetes

go 1.25.0

require (
\tgo.etcd.io/etcd/server/v3 v3.6.5 // indirect
\tk8s.io/api v0.0.0
\tk8s.io/client-go v0.0.0
)

replace (
\tk8s.io/api => ./staging/src/k8s.io/api
\tk8s.io/client-go => ./staging/src/k8s.io/client-go
\tk8s.io/kube-aggregator => ./staging/src/k8s.io/kube-aggregator
)
"""


def _kubeapi() -> ModuleType:
    return load_module("kubeapi", ROOT / "deploy" / "local" / "kubeapi.py")


def _layout(kubeapi: ModuleType, tmp_path: Path) -> object:
    versions = {"KUBERNETES_VERSION": "v1.35.4", "ETCD_VERSION": "v3.6.5"}
    return kubeapi.KubeLayout.from_env(tmp_path / "cache", tmp_path / "run", versions)


def test_staging_modules_are_pinned_to_the_matching_published_version(tmp_path: Path) -> None:
    kubeapi = _kubeapi()
    text = kubeapi.wrapper_go_mod(_layout(kubeapi, tmp_path), GO_MOD)
    assert "\tk8s.io/kubernetes v1.35.4" in text and "\tgo.etcd.io/etcd/server/v3 v3.6.5" in text
    replaced = [line.strip() for line in text.splitlines() if "=>" in line]
    assert replaced == [
        "k8s.io/api => k8s.io/api v0.35.4",
        "k8s.io/client-go => k8s.io/client-go v0.35.4",
        "k8s.io/kube-aggregator => k8s.io/kube-aggregator v0.35.4",
    ]


def test_versions_file_pins_both_and_the_cache_folder_names_them() -> None:
    kubeapi = _kubeapi()
    lines = (ROOT / "deploy" / "local" / "versions.env").read_text().splitlines()
    env = dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))
    lay = kubeapi.KubeLayout.from_env(Path("/c"), Path("/r"), env)
    assert lay.kubernetes_version.startswith("v1.") and lay.etcd_version.startswith("v3.")
    folder = f"kube-{lay.kubernetes_version}-etcd-{lay.etcd_version}"
    assert lay.apiserver_bin == Path("/c") / folder / "kube-apiserver"


def test_servers_listen_on_loopback_with_rbac_and_a_token(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SYNSCALE_KUBE_APISERVER_PORT", "19443")
    monkeypatch.setenv("SYNSCALE_ETCD_PORT", "19379")
    kubeapi = _kubeapi()
    lay = _layout(kubeapi, tmp_path)
    api = kubeapi.apiserver_command(lay)
    assert "--authorization-mode=RBAC" in api and "--bind-address=127.0.0.1" in api
    assert "--secure-port=19443" in api and "--etcd-servers=http://127.0.0.1:19379" in api
    assert any(flag.startswith("--token-auth-file=") for flag in api)
    etcd = kubeapi.etcd_command(lay)
    assert etcd[etcd.index("--listen-client-urls") + 1] == "http://127.0.0.1:19379"
