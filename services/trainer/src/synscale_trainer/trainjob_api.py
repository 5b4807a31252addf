"""TrainJobs on a Kubernetes API server: create once, find again, watch to the end.

A thin layer over the official `kubernetes` client's CustomObjectsApi. Creation is
idempotent by name (the name is the run's, `trainjob.trainjob_name`): AlreadyExists means
a trainer before us created it, and we re-attach to that object rather than make a
second. Waiting is a watch on the one object (field selector on its name) that is
re-opened from the last resource version when it times out, so a long run costs one
open connection, not a poll loop; a cancel flag is honoured between watch windows.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

from synscale.errors import PreconditionFailed, Unavailable
from synscale_trainer.trainjob import ANNOTATION_RUN, GROUP, PLURAL, VERSION

log = logging.getLogger(__name__)
COMPLETE = "Complete"
FAILED = "Failed"
TERMINAL = (COMPLETE, FAILED)
# What this module asks of the API server: the chart's Role grants exactly these on
# trainjobs (k8s/synscale/templates/trainjob-rbac.yaml; a chart test compares them).
RBAC_VERBS = ("create", "get", "list", "watch", "delete")


@dataclass(frozen=True)
class Submission:
    """The TrainJob a run is attached to; `created` is False when it already existed."""

    name: str
    namespace: str
    uid: str
    created: bool


@dataclass(frozen=True)
class Outcome:
    """A TrainJob's terminal condition (type Complete or Failed) and its message."""

    condition: str
    reason: str = ""
    message: str = ""


def terminal_condition(obj: Mapping[str, Any]) -> Outcome | None:
    """The object's Complete/Failed condition with status True, if it has one."""
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") in TERMINAL and str(cond.get("status")) == "True":
            return Outcome(cond["type"], cond.get("reason", ""), cond.get("message", ""))
    return None


def api_client() -> client.ApiClient:
    """In-cluster credentials in a pod, else the kubeconfig (KUBECONFIG or ~/.kube/config)."""
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config()
        return client.ApiClient()
    return config.new_client_from_config(config_file=os.environ.get("KUBECONFIG"))


class TrainJobApi:
    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.objects = client.CustomObjectsApi(api)
        self.namespace = namespace

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(GROUP, VERSION, self.namespace, PLURAL, *args, **kwargs)
        except ApiException as exc:
            if exc.status in (401, 403):
                raise PreconditionFailed(
                    f"{what} trainjobs.{GROUP} in namespace {self.namespace}: {exc.status} {exc.reason}; "
                    "the trainer's service account needs the chart's RBAC (trainer.trainJob.enabled)"
                ) from None
            if exc.status == 404 and what == "create":
                raise PreconditionFailed(
                    f"the API server does not serve trainjobs.{GROUP}/{VERSION}: install the Kubeflow "
                    "Trainer CRDs (k8s/crds/kubeflow-trainer/) or run single-node recipes"
                ) from None
            if exc.status is None or exc.status >= 500:
                raise Unavailable(f"{what} trainjob: {exc.status} {exc.reason}") from None
            raise

    def get(self, name: str) -> dict[str, Any] | None:
        try:
            obj: dict[str, Any] = self._call("get", self.objects.get_namespaced_custom_object, name)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return obj

    def submit(self, manifest: dict[str, Any]) -> Submission:
        """Create the TrainJob, or attach to the one of the same name (same run only)."""
        name = manifest["metadata"]["name"]
        try:
            obj = self._call("create", self.objects.create_namespaced_custom_object, manifest,
                             field_validation="Strict")
            return Submission(name, self.namespace, obj["metadata"]["uid"], created=True)
        except ApiException as exc:
            if exc.status != 409:
                raise
        existing = self.get(name)
        if existing is None:  # deleted between our create and our get: try once more
            return self.submit(manifest)
        run = manifest["metadata"]["annotations"][ANNOTATION_RUN]
        theirs = (existing["metadata"].get("annotations") or {}).get(ANNOTATION_RUN)
        if theirs != run:
            raise PreconditionFailed(
                f"TrainJob {self.namespace}/{name} belongs to run {theirs!r}, not {run!r}; delete it"
            )
        return Submission(name, self.namespace, existing["metadata"]["uid"], created=False)

    def delete(self, name: str) -> None:
        try:
            self._call("delete", self.objects.delete_namespaced_custom_object, name,
                       propagation_policy="Background")  # the GC removes its JobSet and pods
        except ApiException as exc:
            if exc.status != 404:
                raise

    def wait(self, sub: Submission, cancel: threading.Event, window_s: float) -> Outcome | None:
        """Block until the TrainJob is Complete or Failed (its Outcome), or cancelled (None)."""
        while not cancel.is_set():
            obj = self.get(sub.name)
            if obj is None or obj["metadata"]["uid"] != sub.uid:
                raise PreconditionFailed(
                    f"TrainJob {sub.namespace}/{sub.name} was deleted while the run waited"
                )
            done = terminal_condition(obj)
            if done is not None:
                return done
            done = self._watch(sub, obj["metadata"]["resourceVersion"], cancel, window_s)
            if done is not None:
                return done
        return None

    def _watch(
        self, sub: Submission, version: str, cancel: threading.Event, window_s: float
    ) -> Outcome | None:
        stream = watch.Watch()
        try:
            for event in stream.stream(
                self.objects.list_namespaced_custom_object, GROUP, VERSION, self.namespace, PLURAL,
                field_selector=f"metadata.name={sub.name}", resource_version=version,
                timeout_seconds=max(1, int(window_s)),
            ):
                obj = event.get("raw_object") or event["object"]
                if event["type"] == "DELETED":
                    return None  # the next get() says so
                done = terminal_condition(obj) if isinstance(obj, dict) else None
                if done is not None or cancel.is_set():
                    return done
        except ApiException as exc:
            if exc.status != 410:  # 410 Gone: our version is too old; get() starts afresh
                raise
        finally:
            stream.stop()
        return None
