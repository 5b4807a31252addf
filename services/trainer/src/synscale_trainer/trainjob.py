"""A multi-process training run as a Kubeflow Trainer TrainJob: the manifest, rendered.

A run whose recipe asks for more than one node (or more than one GPU on a node) cannot
run inside the trainer's own pod; the trainer renders a TrainJob
(trainer.kubeflow.org/v1alpha1, runtime `torch-distributed`) whose pods each run
`torchrun` on the distributed entry point, and stays the Kafka consumer that owns the run
(docs/scaling.md, "Training on Kubernetes"; ADR 0025). Rendering is a pure function of
the job, its recipe and the deployment's settings, so the same job always renders the
same object: the name is derived from the run id, which is what lets a restarted trainer
find the TrainJob it created instead of creating a second one.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from synscale import ids
from synscale.errors import InvalidInput
from synscale.study import TrainingRecipe
from synscale.v1 import trainer_pb2
from synscale_trainer import launch

GROUP = "trainer.kubeflow.org"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "TrainJob"
PLURAL = "trainjobs"
DEFAULT_RUNTIME = "torch-distributed"
# The module each TrainJob pod runs under torchrun; its arguments are spelled once, in
# synscale_trainer.launch (the entry point reads the job from the store key it gets).
DISTRIBUTED_ENTRY = launch.ENTRY
LABEL_STUDY = "synscale.io/study"
LABEL_RUN = "synscale.io/run"
ANNOTATION_STUDY = "synscale.io/study-id"
ANNOTATION_RUN = "synscale.io/run-id"
# Variables the TrainJob pods inherit from the trainer's own environment (they reach the
# same bus and store); credentials never travel as values, only as Secret references.
PASS_THROUGH = re.compile(
    r"^(S3_(ENDPOINT|BUCKET|SECURE|REGION)|KAFKA_BOOTSTRAP_SERVERS|SYNSCALE_(?!TRAINJOB)[A-Z0-9_]+)$"
)
_MAX_NAME = 63  # the controller derives JobSet/Job/Pod names from it: a DNS-1035 label
_LABEL_VALUE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$")


@dataclass(frozen=True)
class TrainJobSettings:
    """What the deployment decides about TrainJobs (SYNSCALE_TRAINJOB_* variables)."""

    enabled: bool = False
    namespace: str = "default"
    image: str = ""
    runtime: str = DEFAULT_RUNTIME
    gpu_resource: str = "nvidia.com/gpu"
    cpu_per_node: str = ""
    memory_per_node: str = ""
    s3_secret: str = ""  # Secret holding the S3 keys, referenced by the pods' env
    s3_access_key_key: str = "access-key"
    s3_secret_key_key: str = "secret-key"
    env: Mapping[str, str] = field(default_factory=dict)  # passed through to the pods
    poll_s: float = 10.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> TrainJobSettings:
        env = dict(os.environ if env is None else env)
        enabled = env.get("SYNSCALE_TRAINJOB", "0").lower() in {"1", "true", "yes"}
        image = env.get("SYNSCALE_TRAINJOB_IMAGE", "")
        if enabled and not image:
            raise ValueError(
                "SYNSCALE_TRAINJOB=1 needs SYNSCALE_TRAINJOB_IMAGE (the trainer image the pods run)"
            )
        return cls(
            enabled=enabled,
            namespace=env.get("SYNSCALE_TRAINJOB_NAMESPACE") or _pod_namespace() or "default",
            image=image,
            runtime=env.get("SYNSCALE_TRAINJOB_RUNTIME", DEFAULT_RUNTIME),
            gpu_resource=env.get("SYNSCALE_TRAINJOB_GPU_RESOURCE", "nvidia.com/gpu"),
            cpu_per_node=env.get("SYNSCALE_TRAINJOB_CPU", ""),
            memory_per_node=env.get("SYNSCALE_TRAINJOB_MEMORY", ""),
            s3_secret=env.get("SYNSCALE_TRAINJOB_S3_SECRET", ""),
            s3_access_key_key=env.get("SYNSCALE_TRAINJOB_S3_ACCESS_KEY_KEY", "access-key"),
            s3_secret_key_key=env.get("SYNSCALE_TRAINJOB_S3_SECRET_KEY_KEY", "secret-key"),
            env={k: v for k, v in sorted(env.items()) if PASS_THROUGH.match(k)},
            poll_s=float(env.get("SYNSCALE_TRAINJOB_POLL_S", "10")),
        )


def _pod_namespace() -> str:
    """The namespace of the pod we run in (the service account's mount), if any."""
    path = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
    try:
        with open(path) as fh:
            return fh.read().strip()
    except OSError:
        return ""


def needs_trainjob(recipe: TrainingRecipe) -> bool:
    """More than one process: the run cannot train inside the trainer's own pod."""
    return recipe.distributed


def procs_per_node(recipe: TrainingRecipe) -> int:
    """torchrun processes per pod: one per GPU, one on a CPU-only node (gloo)."""
    return max(1, recipe.gpus_per_node)


def job_ref(job: trainer_pb2.TrainingJob) -> str:
    """The `--job` value with which the pods find the job they train (in the store)."""
    return launch.store_ref(job)


def torchrun_command(nodes: int, nproc_per_node: int, ref: str, rendezvous: Sequence[str] = ()) -> list[str]:
    """The command each pod runs: torchrun on the distributed entry point.

    In a TrainJob the node rank and rendezvous come from the PET_* variables the torch
    runtime sets; elsewhere (`jobset.py`) they are passed as `rendezvous` flags.
    """
    return [
        "torchrun", "--nnodes", str(nodes), "--nproc-per-node", str(nproc_per_node), *rendezvous,
        *launch.entry_args(ref),
    ]


def trainjob_name(run_id: str) -> str:
    """A DNS-1035 label from the run id, stable and unique to it (a digest keeps it so)."""
    if not run_id:
        raise InvalidInput("run_id", "a TrainJob needs the run's id")
    base = re.sub(r"[^a-z0-9-]+", "-", run_id.lower()).strip("-")
    suffix = ids.digest(run_id, length=10)
    room = _MAX_NAME - len("ss--") - len(suffix)
    return f"ss-{base[:room].rstrip('-')}-{suffix}" if base else f"ss-{suffix}"


def label_value(text: str) -> str:
    """`text` where it is a valid label value, else a readable prefix plus a digest."""
    if len(text) <= _MAX_NAME and _LABEL_VALUE.match(text):
        return text
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-._")[: _MAX_NAME - 11].rstrip("-._")
    return f"{safe}-{ids.digest(text, length=10)}" if safe else ids.digest(text, length=10)


def pod_env(settings: TrainJobSettings, job: trainer_pb2.TrainingJob) -> list[dict[str, Any]]:
    """The pods' environment: the trainer's bus/store settings, the job's bucket, S3 keys by reference."""
    values = dict(settings.env)
    if job.bucket:
        values["S3_BUCKET"] = job.bucket  # the job's bucket wins over the deployment's default
    out: list[dict[str, Any]] = [{"name": k, "value": v} for k, v in sorted(values.items())]
    if settings.s3_secret:
        for name, key in (("S3_ACCESS_KEY", settings.s3_access_key_key),
                          ("S3_SECRET_KEY", settings.s3_secret_key_key)):
            ref = {"name": settings.s3_secret, "key": key}
            out.append({"name": name, "valueFrom": {"secretKeyRef": ref}})
    return out


def resources_per_node(recipe: TrainingRecipe, settings: TrainJobSettings) -> dict[str, Any]:
    """GPU limits (a GPU is requested by its limit) and the optional CPU/memory requests."""
    limits: dict[str, str] = {}
    requests: dict[str, str] = {}
    if recipe.gpus_per_node > 0:
        limits[settings.gpu_resource] = str(recipe.gpus_per_node)
    if settings.cpu_per_node:
        requests["cpu"] = settings.cpu_per_node
    if settings.memory_per_node:
        requests["memory"] = limits["memory"] = settings.memory_per_node
    out: dict[str, Any] = {}
    if limits:
        out["limits"] = limits
    if requests:
        out["requests"] = requests
    return out


def labels(job: trainer_pb2.TrainingJob) -> dict[str, str]:
    return {
        "app.kubernetes.io/managed-by": "synscale-trainer",
        LABEL_STUDY: label_value(job.study_id),
        LABEL_RUN: label_value(job.run_id),
    }


def metadata(job: trainer_pb2.TrainingJob, settings: TrainJobSettings) -> dict[str, Any]:
    """Name (the run's), namespace, labels and the full ids as annotations."""
    return {
        "name": trainjob_name(job.run_id),
        "namespace": settings.namespace,
        "labels": labels(job),
        "annotations": {ANNOTATION_STUDY: job.study_id, ANNOTATION_RUN: job.run_id},
    }


def render(
    job: trainer_pb2.TrainingJob, recipe: TrainingRecipe, settings: TrainJobSettings
) -> dict[str, Any]:
    """The TrainJob for a normalised job (its run id set); deterministic in its inputs."""
    if not settings.image:
        raise InvalidInput("SYNSCALE_TRAINJOB_IMAGE", "the TrainJob pods need the trainer image")
    nproc = procs_per_node(recipe)
    trainer: dict[str, Any] = {
        "image": settings.image,
        "command": torchrun_command(recipe.nodes, nproc, job_ref(job)),
        "numNodes": recipe.nodes,
        "numProcPerNode": nproc,
        "env": pod_env(settings, job),
    }
    resources = resources_per_node(recipe, settings)
    if resources:
        trainer["resourcesPerNode"] = resources
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": metadata(job, settings),
        "spec": {
            "runtimeRef": {"apiGroup": GROUP, "kind": "ClusterTrainingRuntime", "name": settings.runtime},
            "trainer": trainer,
        },
    }
