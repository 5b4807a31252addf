"""A run trained by a TrainJob: submit it (or re-attach), wait for it, report its result.

The trainer stays the owner of the run (the Kafka consumer that publishes its
RunResult); the TrainJob's pods only train. So the steps are: put the job where the
pods read it (runs/<id>/job.json), render and validate the TrainJob, create it once —
a restarted trainer gets AlreadyExists and attaches to the same object — wait for its
Complete/Failed condition, then read the RunResult that rank 0 wrote to the store
(docs/scaling.md, "Training on Kubernetes"; ADR 0025).
"""

from __future__ import annotations

import logging
import threading

from synscale import codecs
from synscale.store.base import ObjectStore
from synscale.study import TrainingRecipe
from synscale.v1 import trainer_pb2
from synscale_trainer import jobs, launch
from synscale_trainer.trainjob import TrainJobSettings, render
from synscale_trainer.trainjob_api import FAILED, Submission, TrainJobApi
from synscale_trainer.trainjob_schema import validate

log = logging.getLogger(__name__)


class TrainJobRunner:
    def __init__(self, store: ObjectStore, settings: TrainJobSettings, api: TrainJobApi) -> None:
        self.store = store
        self.settings = settings
        self.api = api
        self.submissions: list[Submission] = []  # what this process created or attached to

    def run(self, job: trainer_pb2.TrainingJob, recipe: TrainingRecipe,
            cancel: threading.Event) -> trainer_pb2.RunResult:
        """Train `job` (normalised) as a TrainJob; the RunResult to announce."""
        manifest = validate(render(job, recipe, self.settings))
        self.store.put_if_changed(launch.job_key(job), codecs.training_job_to_json(job),
                                  content_type="application/json")
        sub = self.api.submit(manifest)
        self.submissions.append(sub)
        log.info("run %s: %s TrainJob %s/%s (%d node(s))", job.run_id,
                 "created" if sub.created else "re-attached to", sub.namespace, sub.name, recipe.nodes)
        outcome = self.api.wait(sub, cancel, self.settings.poll_s)
        if outcome is None:
            log.info("run %s cancelled; deleting TrainJob %s", job.run_id, sub.name)
            self.api.delete(sub.name)
            return self._result(job, "cancelled", "")
        if outcome.condition == FAILED:
            return self._result(job, "failed", f"TrainJob {sub.namespace}/{sub.name} failed: "
                                f"{outcome.reason}: {outcome.message}"[:4000])
        result = jobs.load_result(self.store, job)
        if result is None:
            return self._result(job, "failed", f"TrainJob {sub.namespace}/{sub.name} completed, but rank 0 "
                                f"wrote no {jobs.result_key(job)}")
        return result

    @staticmethod
    def _result(job: trainer_pb2.TrainingJob, status: str, error: str) -> trainer_pb2.RunResult:
        return trainer_pb2.RunResult(study_id=job.study_id, run_id=job.run_id, job=job,
                                     status=status, error=error)
