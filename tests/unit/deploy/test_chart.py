"""The Helm chart k8s/synscale, linted and rendered offline with helm-python-sdk.

Every manifest rendered for each value combination in k8s/synscale/ci/ is validated
with kubernetes-validate in strict mode (against the oldest supported and the newest
Kubernetes it knows); the custom resources (KEDA ScaledObject, Strimzi Kafka,
KafkaNodePool, KafkaTopic) against minimal schemas written from the upstream CRDs in
schemas/. Then what the issue asks of the chart is asserted on the rendered objects,
including the renders that must fail.
"""

from __future__ import annotations

import base64
import copy
import json
import re
from pathlib import Path
from typing import Any

import helm_python as helm
import jsonschema
import kubernetes_validate
import pytest
import yaml

from synscale.config import TOPIC_NAMES
from synscale.service import LIVENESS_SERVICE

Objects = dict[Any, Any]  # (kind, name) -> manifest, and 'NOTES' -> text
ROOT = Path(__file__).resolve().parents[3]
CHART = ROOT / "k8s" / "synscale"
SCHEMAS = Path(__file__).parent / "schemas"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
KUBE_VERSIONS = ("1.29", kubernetes_validate.utils.latest_version())
GPU = "nvidia.com/gpu"
GPU_SERVICES = ("generator", "scorer", "trainer")
CPU_SERVICES = ("prompter", "analyzer")
CRD_SCHEMAS = {
    ("keda.sh/v1alpha1", "ScaledObject"): "keda.sh_v1alpha1_scaledobject.json",
    ("kafka.strimzi.io/v1beta2", "Kafka"): "kafka.strimzi.io_v1beta2_kafka.json",
    ("kafka.strimzi.io/v1beta2", "KafkaNodePool"): "kafka.strimzi.io_v1beta2_kafkanodepool.json",
    ("kafka.strimzi.io/v1beta2", "KafkaTopic"): "kafka.strimzi.io_v1beta2_kafkatopic.json",
}
# The least a production install must say: where S3 is and where its keys live, and
# where the weights are.
MINIMAL = {"s3": {"endpoint": "s3.example.com:443", "existingSecret": "s3-keys"},
           "models": {"pvc": {"claimName": "weights"}}}


def render(chart: helm.Chart, values: dict[str, Any]) -> Objects:
    """Rendered objects by (kind, name), plus the NOTES text under 'NOTES'."""
    out = chart.render(values, name="rel", namespace="synscale")
    objects: Objects = {}
    for path, text in out.items():
        if path.endswith("NOTES.txt"):
            objects["NOTES"] = text
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                key = (doc["kind"], doc["metadata"]["name"])
                assert key not in objects, f"duplicate {key}"
                objects[key] = doc
    return objects


def ci_values(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def deployment(objs: Objects, svc: str) -> dict[str, Any]:
    return objs[("Deployment", f"rel-synscale-{svc}")]


def container(objs: Objects, svc: str) -> dict[str, Any]:
    return deployment(objs, svc)["spec"]["template"]["spec"]["containers"][0]


def config_env(objs: Objects) -> dict[str, str]:
    data: dict[str, str] = objs[("ConfigMap", "rel-synscale-env")]["data"]
    return data


def crd_validator(doc: dict[str, Any]) -> jsonschema.Draft202012Validator:
    name = CRD_SCHEMAS[(doc["apiVersion"], doc["kind"])]
    return jsonschema.Draft202012Validator(json.loads((SCHEMAS / name).read_text()))


def rendering_error(chart: helm.Chart, values: dict[str, Any]) -> str:
    with pytest.raises(helm.HelmError) as info:
        chart.render(values, name="rel", namespace="synscale")
    return str(info.value)


def with_values(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """Deep-merge dotted keys into a copy: with_values(v, **{"a.b": 1})."""
    out = copy.deepcopy(base)
    for dotted, value in changes.items():
        node = out
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return out


# -- lint and validation -----------------------------------------------------------------

@pytest.mark.parametrize("values_file", CI_VALUES, ids=lambda p: p.stem)
def test_lint_is_clean(chart_dir: Path, values_file: Path) -> None:
    report = helm.lint(chart_dir, ci_values(values_file), strict=True, kube_version="v1.29.0")
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert not problems and not report["errors"], problems or report["errors"]


@pytest.mark.parametrize("kube", KUBE_VERSIONS)
@pytest.mark.parametrize("values_file", CI_VALUES, ids=lambda p: p.stem)
def test_every_manifest_validates_strictly(chart: helm.Chart, values_file: Path, kube: str) -> None:
    objs = render(chart, ci_values(values_file))
    kinds = set()
    for key, doc in objs.items():
        if key == "NOTES":
            continue
        kinds.add(doc["kind"])
        if (doc["apiVersion"], doc["kind"]) in CRD_SCHEMAS:
            errors = sorted(crd_validator(doc).iter_errors(doc), key=str)
            assert not errors, f"{key}: {[e.message for e in errors]}"
        else:
            kubernetes_validate.validate(doc, kube, strict=True)
    assert {"Deployment", "Service", "ConfigMap"} <= kinds


def test_crd_schemas_reject_wrong_fields(chart: helm.Chart) -> None:
    """The minimal CRD schemas are strict enough to catch the mistakes that matter."""
    objs = render(chart, MINIMAL)
    so = objs[("ScaledObject", "rel-synscale-generator")]
    kafka = objs[("Kafka", "rel-synscale")]
    pool = objs[("KafkaNodePool", "rel-synscale-dual")]
    bad = []
    doc = copy.deepcopy(so)
    doc["spec"]["maxReplicas"] = 8  # HPA's name, not KEDA's
    bad.append(doc)
    doc = copy.deepcopy(so)
    doc["spec"]["triggers"][0]["metadata"]["lagThreshold"] = 4  # metadata is map[string]string
    bad.append(doc)
    doc = copy.deepcopy(so)
    del doc["spec"]["triggers"][0]["metadata"]["consumerGroup"]
    bad.append(doc)
    doc = copy.deepcopy(kafka)
    doc["spec"]["kafka"]["listeners"][0]["type"] = "clusterip"
    bad.append(doc)
    doc = copy.deepcopy(kafka)
    doc["spec"]["kafka"]["listener"] = doc["spec"]["kafka"].pop("listeners")
    bad.append(doc)
    doc = copy.deepcopy(pool)
    doc["spec"]["roles"] = ["controller", "zookeeper"]
    bad.append(doc)
    for doc in bad:
        assert list(crd_validator(doc).iter_errors(doc)), doc["spec"]


# -- services, GPUs, probes -------------------------------------------------------------

def test_a_deployment_and_service_per_service_with_grpc_probes(chart: helm.Chart) -> None:
    objs = render(chart, MINIMAL)
    for svc in GPU_SERVICES + CPU_SERVICES:
        c = container(objs, svc)
        assert c["image"] == f"synscale/{svc}:0.1.0"
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        assert ports == {"grpc": 50051, "metrics": 9090}
        # Liveness must not fail for a dependency that is down (ADR 0015): it asks for the
        # health name that stays SERVING while the process runs; readiness for the overall one.
        for probe in ("startupProbe", "livenessProbe"):
            assert c[probe]["grpc"] == {"port": 50051, "service": LIVENESS_SERVICE}, (svc, probe)
        assert c["readinessProbe"]["grpc"] == {"port": 50051}, svc
        service = objs[("Service", f"rel-synscale-{svc}")]
        assert {p["name"]: p["port"] for p in service["spec"]["ports"]} == ports
        assert service["spec"]["selector"] == deployment(objs, svc)["spec"]["selector"]["matchLabels"]
        pod = deployment(objs, svc)["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert c["securityContext"]["readOnlyRootFilesystem"] is True


def test_gpu_services_request_gpus_with_node_selector_and_tolerations(chart: helm.Chart) -> None:
    objs = render(chart, MINIMAL)
    for svc in GPU_SERVICES:
        res = container(objs, svc)["resources"]
        assert res["requests"][GPU] == res["limits"][GPU] == 1
        pod = deployment(objs, svc)["spec"]["template"]["spec"]
        assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
        assert {"key": GPU, "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    for svc in CPU_SERVICES:
        res = container(objs, svc)["resources"]
        assert GPU not in res.get("requests", {}) and GPU not in res.get("limits", {})
        assert "nodeSelector" not in deployment(objs, svc)["spec"]["template"]["spec"]


def test_gpu_scheduling_comes_from_values(chart: helm.Chart) -> None:
    values = ci_values(CHART / "ci" / "external-kafka-objectstore-values.yaml")
    objs = render(chart, values)
    trainer = deployment(objs, "trainer")["spec"]["template"]["spec"]
    assert trainer["nodeSelector"] == {"cloud.example.com/accelerator": "h100"}  # service wins
    assert container(objs, "trainer")["resources"]["limits"][GPU] == 4
    scorer = deployment(objs, "scorer")["spec"]["template"]["spec"]
    assert scorer["nodeSelector"] == {"cloud.example.com/accelerator": "a100"}
    assert scorer["tolerations"] == values["gpu"]["tolerations"]
    assert container(objs, "generator")["image"] == "registry.example.com/synscale/generator:0.1.0-rc1"
    assert deployment(objs, "generator")["spec"]["replicas"] == 2
    env = {e["name"]: e.get("value") for e in container(objs, "prompter")["env"]}
    assert env["SYNSCALE_WORKERS"] == "2"


# -- Kafka, KEDA ---------------------------------------------------------------------------

def test_strimzi_kraft_cluster_and_topics(chart: helm.Chart) -> None:
    objs = render(chart, MINIMAL)
    kafka = objs[("Kafka", "rel-synscale")]
    assert kafka["metadata"]["annotations"]["strimzi.io/node-pools"] == "enabled"
    assert "zookeeper" not in kafka["spec"]
    pool = objs[("KafkaNodePool", "rel-synscale-dual")]
    assert sorted(pool["spec"]["roles"]) == ["broker", "controller"]
    assert pool["metadata"]["labels"]["strimzi.io/cluster"] == "rel-synscale"
    assert config_env(objs)["KAFKA_BOOTSTRAP_SERVERS"] == "rel-synscale-kafka-bootstrap:9092"
    topics = {d["spec"]["topicName"]: d["spec"] for k, d in objs.items()
              if k != "NOTES" and d["kind"] == "KafkaTopic"}
    expected = {f"synscale.{t}{s}" for t in TOPIC_NAMES for s in ("", ".dlq")}
    assert set(topics) == expected
    assert topics["synscale.generation-jobs"]["partitions"] == 32
    assert topics["synscale.prompt-jobs"]["partitions"] == 12
    assert {t["replicas"] for t in topics.values()} == {3}
    assert config_env(objs)["SYNSCALE_KAFKA_REPLICATION"] == "3"  # topics a service creates match


def test_external_kafka_has_no_strimzi_resources(chart: helm.Chart) -> None:
    objs = render(chart, ci_values(CHART / "ci" / "external-kafka-objectstore-values.yaml"))
    assert not [k for k in objs if k != "NOTES" and "strimzi" in objs[k]["apiVersion"]]
    assert config_env(objs)["KAFKA_BOOTSTRAP_SERVERS"] == "kafka-0.kafka:9092,kafka-1.kafka:9092"
    assert config_env(objs)["SYNSCALE_KAFKA_REPLICATION"] == "3"  # kafka.external.replicationFactor
    assert ("ScaledObject", "rel-synscale-generator") not in objs  # autoscaling disabled
    err = rendering_error(chart, with_values(MINIMAL, **{"kafka.mode": "external"}))
    assert "kafka.external.bootstrapServers is required" in err


def test_keda_scales_the_generator_on_its_consumer_group_lag(chart: helm.Chart) -> None:
    objs = render(chart, ci_values(CHART / "ci" / "strimzi-external-s3-values.yaml"))
    so = objs[("ScaledObject", "rel-synscale-generator")]
    assert so["spec"]["scaleTargetRef"]["name"] == "rel-synscale-generator"
    assert (so["spec"]["minReplicaCount"], so["spec"]["maxReplicaCount"]) == (0, 16)
    (trigger,) = so["spec"]["triggers"]
    assert trigger["type"] == "kafka"
    meta = trigger["metadata"]
    assert meta["consumerGroup"] == "generator"
    assert meta["topic"] == "synscale.generation-jobs"
    assert meta["bootstrapServers"] == config_env(objs)["KAFKA_BOOTSTRAP_SERVERS"]
    assert meta["lagThreshold"] == "4"
    assert "replicas" not in deployment(objs, "generator")["spec"]  # KEDA owns the count
    assert "replicas" in deployment(objs, "scorer")["spec"]


def test_render_fails_when_partitions_cannot_feed_max_replicas(chart: helm.Chart) -> None:
    values = with_values(MINIMAL, **{"generator.autoscaling.maxReplicaCount": 40})
    err = rendering_error(chart, values)
    assert "generation-jobs has 32 partitions" in err and "maxReplicaCount (40)" in err
    # Each worker thread is a consumer too.
    values = with_values(MINIMAL, **{"generator.workers": 5})
    assert "= 40 consumers" in rendering_error(chart, values)
    # Exactly enough partitions renders.
    render(chart, with_values(MINIMAL, **{"generator.autoscaling.maxReplicaCount": 32}))


# -- object store, credentials, weights -------------------------------------------------------

def test_s3_keys_only_from_secrets(chart: helm.Chart) -> None:
    for values_file in CI_VALUES:
        objs = render(chart, ci_values(values_file))
        for key, doc in objs.items():
            if key == "NOTES" or doc["kind"] != "Deployment":
                continue
            pod = doc["spec"]["template"]["spec"]
            for c in pod["containers"] + pod.get("initContainers", []):
                env = {e["name"]: e for e in c["env"]}
                for name in ("S3_ACCESS_KEY", "S3_SECRET_KEY"):
                    assert "value" not in env[name] and env[name]["valueFrom"]["secretKeyRef"], key
        assert not {"S3_ACCESS_KEY", "S3_SECRET_KEY"} & set(config_env(objs))


def test_inline_keys_become_a_secret_and_existing_secret_is_referenced(chart: helm.Chart) -> None:
    objs = render(chart, ci_values(CHART / "ci" / "external-kafka-objectstore-values.yaml"))
    secret = objs[("Secret", "rel-synscale-s3")]
    assert base64.b64decode(secret["data"]["access-key"]) == b"ci-access-key"
    objs = render(chart, ci_values(CHART / "ci" / "strimzi-external-s3-values.yaml"))
    assert not [k for k in objs if k != "NOTES" and k[0] == "Secret"]
    ref = {e["name"]: e for e in container(objs, "scorer")["env"]}["S3_SECRET_KEY"]
    assert ref["valueFrom"]["secretKeyRef"] == {"name": "synscale-s3", "key": "AWS_SECRET_ACCESS_KEY"}


def test_no_default_credentials(chart: helm.Chart) -> None:
    """Production values render nothing until keys or a Secret are named."""
    values = with_values(MINIMAL, **{"s3.existingSecret": ""})
    assert "s3.accessKey is required" in rendering_error(chart, values)
    values = with_values(values, **{"s3.accessKey": "only-half"})
    assert "s3.secretKey is required" in rendering_error(chart, values)
    values = {"models": {"source": "none"}, "minio": {"enabled": True}}
    assert "minio.existingSecret is required" in rendering_error(chart, values)
    assert "s3.endpoint is required" in rendering_error(
        chart, with_values(MINIMAL, **{"s3.endpoint": ""}))
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    assert not defaults["s3"]["accessKey"] and not defaults["s3"]["secretKey"]


def test_minio_mode_points_services_at_the_subchart(chart: helm.Chart) -> None:
    objs = render(chart, ci_values(CHART / "ci" / "minio-values.yaml"))
    env = config_env(objs)
    assert (env["S3_ENDPOINT"], env["S3_SECURE"]) == ("rel-minio:9000", "false")
    ref = {e["name"]: e for e in container(objs, "trainer")["env"]}["S3_ACCESS_KEY"]
    assert ref["valueFrom"]["secretKeyRef"] == {"name": "synscale-minio-root", "key": "rootUser"}


def test_weights_from_a_pvc_or_the_object_store(chart: helm.Chart) -> None:
    objs = render(chart, MINIMAL)
    for svc in GPU_SERVICES:
        pod = deployment(objs, svc)["spec"]["template"]["spec"]
        vols = {v["name"]: v for v in pod["volumes"]}
        assert vols["models"]["persistentVolumeClaim"] == {"claimName": "weights", "readOnly": True}
        mounts = {m["name"]: m for m in pod["containers"][0]["volumeMounts"]}
        assert mounts["models"]["mountPath"] == "/models" and mounts["models"]["readOnly"]
    for svc in CPU_SERVICES:
        pod = deployment(objs, svc)["spec"]["template"]["spec"]
        assert "models" not in {v["name"] for v in pod["volumes"]}

    objs = render(chart, ci_values(CHART / "ci" / "external-kafka-objectstore-values.yaml"))
    pod = deployment(objs, "generator")["spec"]["template"]["spec"]
    (init,) = pod["initContainers"]
    assert init["command"] == ["python", "/opt/synscale/fetch_weights.py"]
    assert init["args"] == ["--prefix", "models/sd15/", "--dest", "/models"]
    assert init["image"] == pod["containers"][0]["image"]
    assert "emptyDir" in {v["name"]: v for v in pod["volumes"]}["models"]

    err = rendering_error(chart, with_values(MINIMAL, **{"models.pvc.claimName": ""}))
    assert "models.pvc.claimName is required" in err


# -- values schema, consistency with the code, NOTES ------------------------------------------

@pytest.mark.parametrize(("dotted", "value", "where"), [
    ("kafka.mode", "zookeeper", "/kafka/mode"),
    ("generator.replicas", -1, "/generator/replicas"),
    ("generater.gpu", 1, "generater"),
    ("topics.partitionOverrides.generation-job", 8, "generation-job"),
    ("common.logLevel", "LOUD", "/common/logLevel"),
    ("generator.autoscaling.lagThreshold", 0, "/generator/autoscaling/lagThreshold"),
])
def test_values_schema_rejects_bad_values(chart: helm.Chart, dotted: str, value: Any,
                                          where: str) -> None:
    err = rendering_error(chart, with_values(MINIMAL, **{dotted: value}))
    assert "schema" in err and where in err


def test_chart_topics_and_env_match_the_code() -> None:
    helpers = (CHART / "templates" / "_helpers.tpl").read_text()
    listed = re.search(r'define "synscale.topicNames" -}}\s*\n(.*?)\n', helpers)
    assert listed and tuple(listed.group(1).split()) == TOPIC_NAMES


def test_every_setting_the_chart_passes_is_read_by_the_code(chart: helm.Chart) -> None:
    objs = render(chart, ci_values(CHART / "ci" / "strimzi-external-s3-values.yaml"))
    names = set(config_env(objs)) | {e["name"] for e in container(objs, "generator")["env"]}
    source = "\n".join(p.read_text() for p in (ROOT / "shared" / "src" / "synscale").rglob("*.py"))
    ours = {n for n in names if n.startswith(("SYNSCALE_", "S3_", "KAFKA_"))}
    assert "SYNSCALE_PARTITIONS_GENERATION_JOBS" in ours
    dynamic = {n for n in ours if n.startswith("SYNSCALE_PARTITIONS_")}  # built from TOPIC_NAMES
    unread = sorted(n for n in ours - dynamic if n not in source)
    assert not unread, f"chart sets variables nothing reads: {unread}"


def test_notes_render_with_the_endpoints(chart: helm.Chart) -> None:
    notes = render(chart, MINIMAL)["NOTES"]
    assert "rel-synscale-kafka-bootstrap:9092" in notes
    assert "kubectl -n synscale get scaledobject rel-synscale-generator" in notes
    assert "studies/<study-id>/report/" in notes


# -- TrainJobs (multi-node training; docs/scaling.md) ---------------------------------------

TRAINJOB_VALUES = CHART / "ci" / "trainjob-values.yaml"


def test_trainjob_rbac_is_off_by_default(chart: helm.Chart) -> None:
    objs = render(chart, MINIMAL)
    assert not [k for k in objs if k != "NOTES" and k[0] in ("Role", "RoleBinding")]
    pod = deployment(objs, "trainer")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "rel-synscale" and pod["automountServiceAccountToken"] is False
    assert not [e for e in container(objs, "trainer")["env"] if e["name"].startswith("SYNSCALE_TRAINJOB")]


def test_trainjob_mode_gives_the_trainer_alone_an_account_with_rbac(chart: helm.Chart) -> None:
    from synscale_trainer.trainjob_api import RBAC_VERBS

    objs = render(chart, ci_values(TRAINJOB_VALUES))
    account = objs[("ServiceAccount", "rel-synscale-trainer")]
    assert account["automountServiceAccountToken"] is True
    role = objs[("Role", "rel-synscale-trainer-trainjobs")]
    rules = {(r["apiGroups"][0], r["resources"][0]): set(r["verbs"]) for r in role["rules"]}
    assert rules[("trainer.kubeflow.org", "trainjobs")] == set(RBAC_VERBS)
    assert rules[("jobset.x-k8s.io", "jobsets")] == set(RBAC_VERBS)  # the fallback, enabled here
    binding = objs[("RoleBinding", "rel-synscale-trainer-trainjobs")]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "rel-synscale-trainer",
                                    "namespace": "synscale"}]
    pod = deployment(objs, "trainer")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "rel-synscale-trainer" and pod["automountServiceAccountToken"]
    for svc in ("generator", "scorer", "prompter", "analyzer"):  # no API token anywhere else
        other = deployment(objs, svc)["spec"]["template"]["spec"]
        assert other["serviceAccountName"] == "rel-synscale" and not other["automountServiceAccountToken"]


def test_trainjob_settings_reach_the_trainer_and_are_read_by_it(chart: helm.Chart) -> None:
    objs = render(chart, ci_values(TRAINJOB_VALUES))
    env = {e["name"]: e for e in container(objs, "trainer")["env"]}
    assert env["SYNSCALE_TRAINJOB"]["value"] == "1"
    assert env["SYNSCALE_TRAINJOB_IMAGE"]["value"] == container(objs, "trainer")["image"]
    assert env["SYNSCALE_TRAINJOB_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    assert env["SYNSCALE_TRAINJOB_S3_SECRET"]["value"] == "synscale-s3"
    assert env["SYNSCALE_TRAINJOB_CPU"]["value"] == "16"
    assert env["SYNSCALE_TRAINJOB_MEMORY"]["value"] == "128Gi"
    source = (ROOT / "services" / "trainer" / "src" / "synscale_trainer" / "trainjob.py").read_text()
    unread = sorted(n for n in env if n.startswith("SYNSCALE_TRAINJOB") and f'"{n}"' not in source)
    assert not unread, f"chart sets variables the trainer does not read: {unread}"
