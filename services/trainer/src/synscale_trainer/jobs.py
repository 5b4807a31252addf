"""Training-job identity and the run's stored result.

A run is named by its job: the run id is a digest of every field that changes what is
trained (when the caller leaves it empty), and the checkpoint carries a fingerprint of the
same fields so a checkpoint is never resumed into a different job that reuses an id.
"""

from __future__ import annotations

from synscale import codecs, ids, layout, plan
from synscale.errors import InvalidInput
from synscale.store.base import ObjectStore
from synscale.v1 import trainer_pb2
from synscale_trainer.plan import Cell

RESULT = "result.json"
CHECKPOINT = "checkpoint.pt"


def derive_run_id(job: trainer_pb2.TrainingJob) -> str:
    """The run id the analyzer would give this job (synscale.plan.run_id: one digest)."""
    return plan.run_id(job)


def fingerprint(job: trainer_pb2.TrainingJob) -> str:
    return ids.digest(plan.run_identity(job), length=32)


def normalise(job: trainer_pb2.TrainingJob) -> trainer_pb2.TrainingJob:
    """A copy with defaults filled in (kind, run id); raises InvalidInput naming the field."""
    out = trainer_pb2.TrainingJob()
    out.CopyFrom(job)
    if not out.study_id:
        raise InvalidInput("study_id", "must not be empty")
    if not out.kind:
        out.kind = "supervised"
    if out.kind not in ("supervised", "clip"):
        raise InvalidInput("kind", f"must be 'supervised' or 'clip', got {out.kind!r}")
    if not out.arch:
        raise InvalidInput("arch", "must not be empty")
    if out.image_size < 0:
        raise InvalidInput("image_size", f"must be >= 0, got {out.image_size}")
    if out.eval_limit < 0:
        raise InvalidInput("eval_limit", f"must be >= 0, got {out.eval_limit}")
    if not out.run_id:
        out.run_id = derive_run_id(out)
    ids.safe_component(out.run_id)
    return out


def cells_of(job: trainer_pb2.TrainingJob) -> list[Cell]:
    cells = [Cell.of(c) for c in job.cells]
    for i, c in enumerate(cells):
        if not c.generator or not c.strategy:
            raise InvalidInput(f"cells[{i}]", "generator and strategy must not be empty")
    if len(set(cells)) != len(cells):
        raise InvalidInput("cells", "cells must be distinct")
    return cells


def result_key(job: trainer_pb2.TrainingJob) -> str:
    return layout.run_key(job.study_id, job.run_id, RESULT)


def checkpoint_key(job: trainer_pb2.TrainingJob) -> str:
    return layout.run_key(job.study_id, job.run_id, CHECKPOINT)


result_to_json = codecs.run_result_to_json  # the one result.json codec (synscale.codecs)
result_from_json = codecs.run_result_from_json


def load_result(store: ObjectStore, job: trainer_pb2.TrainingJob) -> trainer_pb2.RunResult | None:
    """The stored result of a finished run, or None."""
    key = result_key(job)
    if not store.exists(key):
        return None
    return result_from_json(store.get(key))
