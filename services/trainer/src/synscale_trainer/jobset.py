"""The fallback where Kubeflow Trainer is absent: the same run as a JobSet, rendered.

Without the TrainJob controller nothing creates the pods or sets torchrun's PET_*
variables, so the JobSet (jobset.x-k8s.io/v1alpha2) spells the rendezvous out: one
replicated Job of `nodes` indexed pods, DNS hostnames on (JobSet's headless Service gives
pod i the name `<name>-node-0-<i>.<name>`), node rank from the Job's completion index and
pod 0 as the rendezvous master (docs/scaling.md, "Where Kubeflow Trainer is absent"). The
trainer renders and validates it (against the upstream CRD, `trainjob_schema`) but does not
submit it; the chart's `trainer.trainJob.jobSetFallback` grants the verbs for an operator
or a later trainer mode that does.
"""

from __future__ import annotations

from typing import Any

from synscale.study import TrainingRecipe
from synscale.v1 import trainer_pb2
from synscale_trainer.trainjob import (
    TrainJobSettings,
    job_ref,
    metadata,
    pod_env,
    procs_per_node,
    resources_per_node,
    torchrun_command,
)

API_VERSION = "jobset.x-k8s.io/v1alpha2"
KIND = "JobSet"
REPLICATED_JOB = "node"
RENDEZVOUS_PORT = 29500


def rendezvous_flags(name: str) -> list[str]:
    """torchrun's rank and master for pod <completion index> of JobSet `name`."""
    master = f"{name}-{REPLICATED_JOB}-0-0.{name}"
    return ["--node-rank", "$(JOB_COMPLETION_INDEX)", "--master-addr", master,
            "--master-port", str(RENDEZVOUS_PORT)]


def render_jobset(job: trainer_pb2.TrainingJob, recipe: TrainingRecipe,
                  settings: TrainJobSettings) -> dict[str, Any]:
    """The JobSet for a normalised job; same name, labels and command as its TrainJob."""
    meta = metadata(job, settings)
    container: dict[str, Any] = {
        "name": REPLICATED_JOB,
        "image": settings.image,
        "command": torchrun_command(recipe.nodes, procs_per_node(recipe), job_ref(job),
                                    rendezvous_flags(meta["name"])),
        "env": pod_env(settings, job),
        "ports": [{"name": "rendezvous", "containerPort": RENDEZVOUS_PORT, "protocol": "TCP"}],
    }
    resources = resources_per_node(recipe, settings)
    if resources:
        container["resources"] = resources
    pod = {"metadata": {"labels": meta["labels"]},
           "spec": {"restartPolicy": "Never", "containers": [container]}}
    job_spec = {"parallelism": recipe.nodes, "completions": recipe.nodes, "completionMode": "Indexed",
                "backoffLimit": 0, "template": pod}
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": meta,
        "spec": {
            "network": {"enableDNSHostnames": True},
            "failurePolicy": {"maxRestarts": 0},  # a failed rank fails the run (as in a TrainJob)
            "replicatedJobs": [{"name": REPLICATED_JOB, "replicas": 1, "template": {"spec": job_spec}}],
        },
    }
