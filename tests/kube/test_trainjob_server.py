"""The trainer service against a real kube-apiserver + etcd with the Kubeflow Trainer CRDs.

No kubelet and no Kubeflow controller run: the test plays the controller's part by
writing the TrainJob's status (and rank 0's RunResult to the store). What is checked:
the TrainJob the service renders is accepted by the server's own validation of the
upstream CRD (strict field validation), it is created once, a trainer killed mid-run is
replaced by a new instance that re-attaches to the same object (same uid, still one
TrainJob) instead of creating a second, and the service reports the result rank 0 wrote.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from synscale import codecs
from synscale.errors import PreconditionFailed
from synscale.store.file import FileStore
from synscale.study import TrainingRecipe
from synscale.testing.polling import eventually
from synscale.v1 import common_pb2, trainer_pb2
from synscale_trainer import jobs, jobset, launch, trainjob
from synscale_trainer.runs import RunManager
from synscale_trainer.train import TrainOptions
from synscale_trainer.trainjob_api import TrainJobApi
from synscale_trainer.trainjob_runs import TrainJobRunner

pytestmark = pytest.mark.kube
ROOT = Path(__file__).resolve().parents[2]
CRDS = ROOT / "k8s" / "crds" / "kubeflow-trainer"
PROC = Path(__file__).with_name("trainer_proc.py")
RECIPE = TrainingRecipe(nodes=2, gpus_per_node=2, max_steps=400)
IMAGE = "registry.example/synscale/trainer:test"
WAIT_S = 120.0


@pytest.fixture(scope="module")
def api(kubeconfig: Path) -> Iterator[client.ApiClient]:
    api = config.new_client_from_config(config_file=str(kubeconfig))
    ext = client.ApiextensionsV1Api(api)
    for path in (CRDS / "trainer.kubeflow.org_trainjobs.yaml",
                 CRDS / "trainer.kubeflow.org_clustertrainingruntimes.yaml",
                 ROOT / "k8s" / "crds" / "jobset" / "jobset.x-k8s.io_jobsets.yaml"):
        crd = yaml.safe_load(path.read_text())
        try:
            ext.create_custom_resource_definition(body=crd)
        except ApiException as exc:
            assert exc.status == 409, exc
        crd_name = crd["metadata"]["name"]

        def established(n: str = crd_name) -> bool:
            conds = ext.read_custom_resource_definition(n).status.conditions or []
            return any(c.type == "Established" and c.status == "True" for c in conds)

        eventually(established, f"CRD {crd_name} established", WAIT_S)
    runtime = yaml.safe_load((CRDS / "torch_distributed.yaml").read_text())
    objects = client.CustomObjectsApi(api)

    def runtime_created() -> bool:  # the CRD may take a moment to be served
        try:
            objects.create_cluster_custom_object(trainjob.GROUP, trainjob.VERSION,
                                                 "clustertrainingruntimes", runtime)
        except ApiException as exc:
            if exc.status == 404:
                return False
            assert exc.status == 409, exc
        return True

    eventually(runtime_created, "the torch-distributed ClusterTrainingRuntime", WAIT_S)
    yield api
    api.close()


@pytest.fixture
def namespace(api: client.ApiClient, unique: str) -> Iterator[str]:
    core = client.CoreV1Api(api)
    name = f"synscale-{unique}"
    core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield name
    core.delete_namespace(name)


def settings_env(namespace: str) -> dict[str, str]:
    return {"SYNSCALE_TRAINJOB": "1", "SYNSCALE_TRAINJOB_IMAGE": IMAGE,
            "SYNSCALE_TRAINJOB_NAMESPACE": namespace, "SYNSCALE_TRAINJOB_POLL_S": "1",
            "SYNSCALE_TRAINJOB_S3_SECRET": "s3-keys",
            "S3_ENDPOINT": "minio.example:9000"}


def a_job(study: str = "kube-0123456789ab") -> trainer_pb2.TrainingJob:
    return jobs.normalise(trainer_pb2.TrainingJob(
        study_id=study, kind="supervised", arch="embedded-cnn", n_per_class=64, bucket="synscale",
        cells=[common_pb2.CellId(generator="embedded", cfg=2.0, strategy="classname")],
        recipe_json=RECIPE.recipe_json(),
    ))


def trainjobs(api: client.ApiClient, namespace: str) -> list[dict[str, Any]]:
    listed = client.CustomObjectsApi(api).list_namespaced_custom_object(
        trainjob.GROUP, trainjob.VERSION, namespace, trainjob.PLURAL)
    items: list[dict[str, Any]] = listed["items"]
    return items


def set_condition(api: client.ApiClient, namespace: str, name: str, kind: str, reason: str, msg: str) -> None:
    """The controller's part: the TrainJob's terminal condition, on the status subresource."""
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    status = {"status": {"conditions": [{"type": kind, "status": "True", "reason": reason,
                                         "message": msg, "lastTransitionTime": now}]}}
    client.CustomObjectsApi(api).patch_namespaced_custom_object_status(
        trainjob.GROUP, trainjob.VERSION, namespace, trainjob.PLURAL, name, status)


class Service:
    """A trainer instance in this process: RunManager + TrainJobRunner, results collected."""

    def __init__(self, api: client.ApiClient, store: FileStore, namespace: str) -> None:
        settings = trainjob.TrainJobSettings.from_env(settings_env(namespace))
        self.runner = TrainJobRunner(store, settings, TrainJobApi(api, namespace))
        self.results: list[trainer_pb2.RunResult] = []
        self.manager = RunManager(store, TrainOptions(), on_result=self.results.append, remote=self.runner)
        self.errors: list[BaseException] = []

    def start(self, job: trainer_pb2.TrainingJob) -> threading.Thread:
        def run() -> None:
            try:
                self.manager.run(job)
            except BaseException as exc:
                self.errors.append(exc)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread


def test_submits_once_reattaches_after_a_restart_and_reports_rank0s_result(
    api: client.ApiClient, namespace: str, kubeconfig: Path, tmp_path: Path
) -> None:
    store = FileStore(tmp_path / "store", "synscale")
    job = a_job()
    name = trainjob.trainjob_name(job.run_id)
    (tmp_path / "job.json").write_bytes(codecs.training_job_to_json(job))

    # First trainer: a real process, killed while it waits on the TrainJob it created.
    env = {**os.environ, **settings_env(namespace), "KUBECONFIG": str(kubeconfig)}
    env.pop("KUBERNETES_SERVICE_HOST", None)
    first = subprocess.Popen([sys.executable, str(PROC), str(tmp_path / "store"), str(tmp_path / "job.json")],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        created = eventually(lambda: trainjobs(api, namespace), "the first trainer's TrainJob", WAIT_S)
    finally:
        first.send_signal(signal.SIGKILL)
        output = first.communicate(timeout=30)[0]
    assert len(created) == 1, output
    original = created[0]
    assert original["metadata"]["name"] == name
    # What the server stored is what the service rendered: nothing pruned, nothing defaulted away.
    rendered = trainjob.render(job, RECIPE, trainjob.TrainJobSettings.from_env(env))
    assert original["spec"]["trainer"] == rendered["spec"]["trainer"]
    assert original["spec"]["runtimeRef"] == rendered["spec"]["runtimeRef"]
    assert original["metadata"]["labels"] == rendered["metadata"]["labels"]
    assert store.get(launch.job_key(job)) == codecs.training_job_to_json(job)  # where the pods read it

    # A new instance gets the redelivered job and re-attaches: same object, no second create.
    second = Service(api, store, namespace)
    thread = second.start(job)
    sub = eventually(lambda: second.runner.submissions, "the new instance to attach", WAIT_S)[0]
    assert not sub.created
    assert sub.uid == original["metadata"]["uid"]
    assert [o["metadata"]["uid"] for o in trainjobs(api, namespace)] == [original["metadata"]["uid"]]
    assert thread.is_alive()  # waiting on the TrainJob, not finished by itself

    # The controller's part: rank 0 writes the RunResult, the TrainJob becomes Complete.
    written = trainer_pb2.RunResult(study_id=job.study_id, run_id=job.run_id, job=job, status="done",
                                    steps=400, train_images=640, train_loss=0.4375, device="cuda:0",
                                    checkpoint_key=jobs.checkpoint_key(job))
    store.put(jobs.result_key(job), jobs.result_to_json(written))
    set_condition(api, namespace, name, "Complete", "JobsCompleted", "all nodes finished")
    thread.join(WAIT_S)
    assert not thread.is_alive() and not second.errors, second.errors
    assert len(second.results) == 1
    assert second.results[0] == written
    assert second.manager.get(job.run_id).state == "done"
    assert len(trainjobs(api, namespace)) == 1


def test_a_failed_trainjob_is_reported_as_a_failed_run(
    api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    store = FileStore(tmp_path / "store", "synscale")
    job = a_job("kube-failing-0123")
    service = Service(api, store, namespace)
    thread = service.start(job)
    sub = eventually(lambda: service.runner.submissions, "the TrainJob", WAIT_S)[0]
    assert sub.created
    set_condition(api, namespace, sub.name, "Failed", "BackoffLimitExceeded", "node-1 exited with 137")
    thread.join(WAIT_S)
    assert not thread.is_alive() and not service.errors, service.errors
    (result,) = service.results
    assert result.status == "failed" and result.run_id == job.run_id
    assert "BackoffLimitExceeded: node-1 exited with 137" in result.error


def test_a_trainjob_of_another_run_under_the_same_name_is_not_adopted(
    api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    job = a_job("kube-collide-0123")
    settings = trainjob.TrainJobSettings.from_env(settings_env(namespace))
    squatter = trainjob.render(job, RECIPE, settings)
    squatter["metadata"]["annotations"][trainjob.ANNOTATION_RUN] = "some-other-run"
    client.CustomObjectsApi(api).create_namespaced_custom_object(
        trainjob.GROUP, trainjob.VERSION, namespace, trainjob.PLURAL, squatter)
    runner = TrainJobRunner(FileStore(tmp_path / "store", "synscale"), settings, TrainJobApi(api, namespace))
    with pytest.raises(PreconditionFailed, match="belongs to run 'some-other-run'"):
        runner.run(job, RECIPE, threading.Event())


def test_the_server_accepts_the_jobset_fallback_as_rendered(api: client.ApiClient, namespace: str) -> None:
    """The JobSet rendered where Kubeflow is absent passes the JobSet CRD's strict validation."""
    job = a_job("kube-jobset-0123")
    manifest = jobset.render_jobset(job, RECIPE, trainjob.TrainJobSettings.from_env(settings_env(namespace)))
    stored = client.CustomObjectsApi(api).create_namespaced_custom_object(
        "jobset.x-k8s.io", "v1alpha2", namespace, "jobsets", manifest, field_validation="Strict")
    (ours,), (theirs,) = manifest["spec"]["replicatedJobs"], stored["spec"]["replicatedJobs"]
    assert theirs["template"]["spec"]["template"] == ours["template"]["spec"]["template"]  # pod: untouched
    assert {k: theirs[k] for k in ours} == ours | {"template": theirs["template"]}  # + CRD defaults only


def test_the_server_refuses_what_the_schema_refuses(api: client.ApiClient, namespace: str) -> None:
    """The offline schema and the server agree on a field the CRD does not have."""
    job = a_job("kube-strict-0123")
    manifest = trainjob.render(job, RECIPE, trainjob.TrainJobSettings.from_env(settings_env(namespace)))
    manifest["spec"]["trainer"]["gpus"] = 2
    with pytest.raises(ApiException) as err:
        client.CustomObjectsApi(api).create_namespaced_custom_object(
            trainjob.GROUP, trainjob.VERSION, namespace, trainjob.PLURAL, manifest, field_validation="Strict")
    assert err.value.status == 400 and "gpus" in str(err.value.body)


def chart_rbac(chart: Any, namespace: str) -> list[dict[str, Any]]:
    """The trainer's ServiceAccount, Role and RoleBinding as the chart renders them."""
    values = yaml.safe_load((ROOT / "k8s" / "synscale" / "ci" / "trainjob-values.yaml").read_text())
    rendered = chart.render(values, name="rel", namespace=namespace)
    docs = [d for path, text in rendered.items() if not path.endswith("NOTES.txt")
            for d in yaml.safe_load_all(text) if d]
    return [d for d in docs if d["kind"] in ("ServiceAccount", "Role", "RoleBinding")
            and d["metadata"]["name"].startswith("rel-synscale-trainer")]


def test_the_charts_rbac_is_exactly_enough_for_the_trainer(
    api: client.ApiClient, namespace: str, kubeconfig: Path, chart: Any, tmp_path: Path
) -> None:
    """The server enforces RBAC; the trainer, as the chart's service account, runs a TrainJob."""
    objs = {d["kind"]: d for d in chart_rbac(chart, namespace)}
    assert set(objs) == {"ServiceAccount", "Role", "RoleBinding"}
    as_trainer = config.new_client_from_config(config_file=str(kubeconfig))
    account = f"system:serviceaccount:{namespace}:rel-synscale-trainer"
    as_trainer.set_default_header("Impersonate-User", account)
    settings = trainjob.TrainJobSettings.from_env(settings_env(namespace))
    trainer_api = TrainJobApi(as_trainer, namespace)
    runner = TrainJobRunner(FileStore(tmp_path / "store", "synscale"), settings, trainer_api)
    job = a_job("kube-rbac-0123")
    with pytest.raises(PreconditionFailed, match="needs the chart's RBAC"):  # no Role yet
        runner.run(job, RECIPE, threading.Event())

    client.CoreV1Api(api).create_namespaced_service_account(namespace, objs["ServiceAccount"])
    client.RbacAuthorizationV1Api(api).create_namespaced_role(namespace, objs["Role"])
    client.RbacAuthorizationV1Api(api).create_namespaced_role_binding(namespace, objs["RoleBinding"])

    def allowed() -> bool:  # the authorizer sees new bindings through its informers
        try:
            return trainer_api.get("not-there") is None
        except PreconditionFailed:
            return False

    eventually(allowed, "the Role to take effect", WAIT_S)
    with pytest.raises(ApiException) as err:  # nothing beyond the Role
        client.CoreV1Api(as_trainer).list_namespaced_pod(namespace)
    assert err.value.status == 403

    cancel = threading.Event()
    results: list[trainer_pb2.RunResult] = []
    thread = threading.Thread(target=lambda: results.append(runner.run(job, RECIPE, cancel)), daemon=True)
    thread.start()
    sub = eventually(lambda: runner.submissions, "the TrainJob created as the trainer", WAIT_S)[0]
    assert sub.created  # create
    again = trainer_api.submit(trainjob.render(job, RECIPE, settings))  # create -> 409 -> get
    assert not again.created and again.uid == sub.uid
    cancel.set()  # the waiting run (get, list+watch) is cancelled: delete
    thread.join(WAIT_S)
    assert not thread.is_alive()
    assert [r.status for r in results] == ["cancelled"]
    assert TrainJobApi(api, namespace).get(sub.name) is None
