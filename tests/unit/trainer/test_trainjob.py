"""Rendering and offline validation of the TrainJob a multi-node recipe becomes (no server).

The schema is the upstream CRD's (k8s/crds/kubeflow-trainer/, Kubeflow Trainer v2.3.0),
closed to unknown fields; these tests check the rendered object against it, that broken
objects are refused with the field named, and that the packaged schema is the CRD's.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from synscale import codecs
from synscale.errors import InvalidInput, PreconditionFailed
from synscale.study import TrainingRecipe
from synscale.v1 import common_pb2, trainer_pb2
from synscale_trainer import jobs, jobset, trainjob, trainjob_schema
from synscale_trainer.runs import RunManager
from synscale_trainer.train import TrainOptions

ROOT = Path(__file__).resolve().parents[3]
CRDS = ROOT / "k8s" / "crds" / "kubeflow-trainer"
SETTINGS = trainjob.TrainJobSettings.from_env({
    "SYNSCALE_TRAINJOB": "1", "SYNSCALE_TRAINJOB_IMAGE": "registry.example/synscale/trainer:0.1.0",
    "SYNSCALE_TRAINJOB_NAMESPACE": "studies", "SYNSCALE_TRAINJOB_S3_SECRET": "s3-keys",
    "SYNSCALE_TRAINJOB_CPU": "8", "SYNSCALE_TRAINJOB_MEMORY": "64Gi",
    "S3_ENDPOINT": "minio:9000", "S3_ACCESS_KEY": "must-not-leak", "S3_SECRET_KEY": "must-not-leak",
    "KAFKA_BOOTSTRAP_SERVERS": "kafka:9092", "SYNSCALE_TOPIC_PREFIX": "synscale",
})


def _job(recipe: TrainingRecipe, study: str = "demo-0123456789ab") -> trainer_pb2.TrainingJob:
    return jobs.normalise(trainer_pb2.TrainingJob(
        study_id=study, kind="supervised", arch=recipe.arch, n_per_class=500,
        cells=[common_pb2.CellId(generator="embedded", cfg=2.0, strategy="classname")],
        recipe_json=recipe.recipe_json(), bucket="synscale",
    ))


MULTI = TrainingRecipe(nodes=4, gpus_per_node=8)


def test_rendered_trainjob_is_valid_per_the_crd_schema() -> None:
    job = _job(MULTI)
    manifest = trainjob.render(job, MULTI, SETTINGS)
    assert trainjob_schema.problems(manifest) == []
    spec = manifest["spec"]
    assert manifest["apiVersion"] == "trainer.kubeflow.org/v1alpha1" and manifest["kind"] == "TrainJob"
    assert spec["runtimeRef"]["name"] == "torch-distributed"
    assert spec["trainer"]["numNodes"] == 4 and spec["trainer"]["numProcPerNode"] == 8
    assert spec["trainer"]["resourcesPerNode"] == {
        "limits": {"nvidia.com/gpu": "8", "memory": "64Gi"}, "requests": {"cpu": "8", "memory": "64Gi"}}
    assert spec["trainer"]["command"] == trainjob.torchrun_command(4, 8, trainjob.job_ref(job))
    assert spec["trainer"]["command"][:5] == ["torchrun", "--nnodes", "4", "--nproc-per-node", "8"]
    assert manifest["metadata"]["namespace"] == "studies"
    assert manifest["metadata"]["labels"][trainjob.LABEL_RUN] == job.run_id
    assert manifest["metadata"]["annotations"][trainjob.ANNOTATION_STUDY] == job.study_id


def test_credentials_travel_only_as_secret_references() -> None:
    env = trainjob.render(_job(MULTI), MULTI, SETTINGS)["spec"]["trainer"]["env"]
    by_name = {e["name"]: e for e in env}
    assert "must-not-leak" not in repr(env)
    assert by_name["S3_ACCESS_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "s3-keys", "key": "access-key"}
    assert by_name["S3_ENDPOINT"]["value"] == "minio:9000"
    assert by_name["S3_BUCKET"]["value"] == "synscale"
    assert by_name["KAFKA_BOOTSTRAP_SERVERS"]["value"] == "kafka:9092"
    assert not any(name.startswith("SYNSCALE_TRAINJOB") for name in by_name)


def test_rendering_is_deterministic_and_the_name_is_the_runs() -> None:
    job = _job(MULTI)
    assert trainjob.render(job, MULTI, SETTINGS) == trainjob.render(copy.deepcopy(job), MULTI, SETTINGS)
    other = _job(TrainingRecipe(nodes=4, gpus_per_node=8, lr=1e-3))
    assert trainjob.trainjob_name(other.run_id) != trainjob.trainjob_name(job.run_id)


@pytest.mark.parametrize("run_id", ["a" * 200, "Mixed_Run.ID.with.dots", "0-starts-with-digit", "x"])
def test_names_and_labels_are_valid_kubernetes_identifiers(run_id: str) -> None:
    name = trainjob.trainjob_name(run_id)
    assert len(name) <= 63 and re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", name), name
    value = trainjob.label_value(run_id + "/" + run_id)
    assert len(value) <= 63 and re.fullmatch(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?", value), value
    assert trainjob.trainjob_name(run_id) == name  # stable


def test_schema_refuses_unknown_and_mistyped_fields_naming_them() -> None:
    manifest = trainjob.render(_job(MULTI), MULTI, SETTINGS)
    manifest["spec"]["trainer"]["numNodes"] = "4"
    manifest["spec"]["trainer"]["gpus"] = 8
    del manifest["spec"]["runtimeRef"]["name"]
    with pytest.raises(InvalidInput) as err:
        trainjob_schema.validate(manifest)
    text = str(err.value)
    assert "spec.trainer.numNodes: '4' is not of type 'integer'" in text
    assert "'gpus' was unexpected" in text
    assert "'name' is a required property" in text


@pytest.mark.parametrize(("crd_file", "kind"), [
    (CRDS / "trainer.kubeflow.org_trainjobs.yaml", "TrainJob"),
    (ROOT / "k8s" / "crds" / "jobset" / "jobset.x-k8s.io_jobsets.yaml", "JobSet"),
])
def test_packaged_schemas_are_the_vendored_crds(crd_file: Path, kind: str) -> None:
    crd = yaml.safe_load(crd_file.read_text())
    fresh = trainjob_schema.dump(trainjob_schema.strict_schema(crd))
    packaged = trainjob_schema.dump(trainjob_schema.packaged_schema(kind))
    assert packaged == fresh, f"run python -m synscale_trainer.trainjob_schema {crd_file}"


def test_jobset_fallback_is_valid_and_spells_the_rendezvous_out() -> None:
    job = _job(MULTI)
    manifest = jobset.render_jobset(job, MULTI, SETTINGS)
    assert trainjob_schema.problems(manifest) == []  # against the JobSet CRD (by kind)
    name = trainjob.trainjob_name(job.run_id)
    assert manifest["metadata"] == trainjob.render(job, MULTI, SETTINGS)["metadata"]
    assert manifest["spec"]["network"]["enableDNSHostnames"] is True
    (replicated,) = manifest["spec"]["replicatedJobs"]
    spec = replicated["template"]["spec"]
    assert spec["parallelism"] == spec["completions"] == 4 and spec["completionMode"] == "Indexed"
    (container,) = spec["template"]["spec"]["containers"]
    command = container["command"]
    assert command[:5] == ["torchrun", "--nnodes", "4", "--nproc-per-node", "8"]
    assert command[command.index("--node-rank") + 1] == "$(JOB_COMPLETION_INDEX)"
    assert command[command.index("--master-addr") + 1] == f"{name}-node-0-0.{name}"
    assert command[-4:] == ["-m", trainjob.DISTRIBUTED_ENTRY, "--job", trainjob.job_ref(job)]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "8"
    broken = copy.deepcopy(manifest)
    broken["spec"]["replicatedJobs"][0]["replica"] = 1
    assert any("'replica' was unexpected" in p for p in trainjob_schema.problems(broken))


def test_vendored_runtime_is_the_one_rendered_jobs_reference() -> None:
    runtime = yaml.safe_load((CRDS / "torch_distributed.yaml").read_text())
    assert runtime["kind"] == "ClusterTrainingRuntime"
    assert runtime["metadata"]["name"] == trainjob.DEFAULT_RUNTIME
    assert "torch" in runtime["spec"]["mlPolicy"]


def test_recipe_placement_fields_are_validated_and_leave_single_node_ids_alone() -> None:
    with pytest.raises(ValidationError, match="nodes"):
        TrainingRecipe(nodes=0)
    with pytest.raises(ValidationError, match="gpus_per_node"):
        TrainingRecipe(gpus_per_node=-1)
    plain = TrainingRecipe()
    assert "nodes" not in plain.recipe_json() and "gpus_per_node" not in plain.recipe_json()
    assert TrainingRecipe(nodes=1).recipe_json() == plain.recipe_json()
    assert TrainingRecipe.model_validate_json(MULTI.recipe_json()) == MULTI
    assert not trainjob.needs_trainjob(plain) and not trainjob.needs_trainjob(TrainingRecipe(gpus_per_node=1))
    assert trainjob.needs_trainjob(TrainingRecipe(gpus_per_node=2))
    assert trainjob.needs_trainjob(TrainingRecipe(nodes=2))
    assert trainjob.procs_per_node(TrainingRecipe(nodes=2)) == 1  # CPU nodes: one gloo process


def test_settings_need_an_image_when_enabled() -> None:
    with pytest.raises(ValueError, match="SYNSCALE_TRAINJOB_IMAGE"):
        trainjob.TrainJobSettings.from_env({"SYNSCALE_TRAINJOB": "1"})
    assert not trainjob.TrainJobSettings.from_env({}).enabled


def test_job_spec_round_trips_through_its_codec() -> None:
    job = _job(MULTI)
    assert codecs.training_job_from_json(codecs.training_job_to_json(job)) == job
    with pytest.raises(ValueError):
        codecs.training_job_from_json(b"\xff")


def test_multi_node_recipe_without_kubernetes_is_refused_not_trained_locally(tmp_path: Path) -> None:
    from synscale.store.file import FileStore

    manager = RunManager(FileStore(tmp_path, "synscale"), TrainOptions(cache_dir=tmp_path))
    with pytest.raises(PreconditionFailed, match="2 nodes"):
        manager.validate(_job(TrainingRecipe(nodes=2)))  # what StartRun checks synchronously
    with pytest.raises(PreconditionFailed, match="SYNSCALE_TRAINJOB=1"):
        manager.run(_job(TrainingRecipe(nodes=2)))
