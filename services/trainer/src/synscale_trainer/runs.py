"""Runs of one trainer process: one at a time, observable and cancellable.

The gRPC servicer and the Kafka worker of a process share one RunManager (per service
context), so a run started from either shows up in GetRun, can be cancelled by
CancelRun, and never competes with another run for the process's GPU.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from synscale.errors import InvalidInput, PreconditionFailed
from synscale.runtime import ServiceContext
from synscale.store.base import ObjectStore
from synscale.study import TrainingRecipe
from synscale.v1 import trainer_pb2
from synscale_trainer import jobs
from synscale_trainer.recipe import parse_recipe
from synscale_trainer.train import Progress, TrainOptions, prepare, run_training
from synscale_trainer.trainjob import TrainJobSettings, needs_trainjob

if TYPE_CHECKING:
    from synscale_trainer.trainjob_runs import TrainJobRunner

log = logging.getLogger(__name__)
TERMINAL = ("done", "failed", "cancelled")


@dataclass
class RunState:
    job: trainer_pb2.TrainingJob
    state: str = "queued"
    step: int = 0
    total_steps: int = 0
    loss: float = 0.0
    result: trainer_pb2.RunResult | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    version: int = 0

    def snapshot(self) -> trainer_pb2.RunProgress:
        out = trainer_pb2.RunProgress(
            run_id=self.job.run_id,
            state=self.state,
            step=self.step,
            total_steps=self.total_steps,
            loss=self.loss,
        )
        if self.result is not None:
            out.result.CopyFrom(self.result)
        return out


class RunManager:
    def __init__(
        self,
        store: ObjectStore,
        options: TrainOptions,
        on_result: Callable[[trainer_pb2.RunResult], None] | None = None,
        remote: TrainJobRunner | None = None,
    ) -> None:
        self.store = store
        self.options = options
        self.on_result = on_result
        self.remote = remote  # multi-process recipes run as TrainJobs (None: no Kubernetes)
        self._runs: dict[str, RunState] = {}
        self._cond = threading.Condition()
        self._gpu = threading.Lock()  # one run at a time per process

    # -- starting ---------------------------------------------------------------------
    def validate(self, job: trainer_pb2.TrainingJob) -> trainer_pb2.TrainingJob:
        """Normalise and fully check a job (no compute); raises InvalidInput/PreconditionFailed."""
        job = jobs.normalise(job)
        self._remote_recipe(job)
        if jobs.load_result(self.store, job) is None:
            prepare(job, self.store, self.options)
        return job

    def _remote_recipe(self, job: trainer_pb2.TrainingJob) -> TrainingRecipe | None:
        """The recipe when the run is a TrainJob's, else None.

        PreconditionFailed where the recipe needs more than one node and this trainer may
        not submit TrainJobs: such a run cannot train in this process.
        """
        recipe = parse_recipe(job.recipe_json, kind=job.kind, arch=job.arch)
        if needs_trainjob(recipe) and self.remote is not None:
            return recipe
        if recipe.nodes > 1:
            raise PreconditionFailed(
                f"run {job.run_id}: the recipe asks for {recipe.nodes} nodes, but this trainer "
                "submits no TrainJobs (set SYNSCALE_TRAINJOB=1 on Kubernetes; docs/scaling.md)"
            )
        return None

    def start(self, job: trainer_pb2.TrainingJob) -> str:
        """Validate, then train in a background thread; returns the run id at once."""
        job = self.validate(job)
        with self._cond:
            current = self._runs.get(job.run_id)
            if current is not None and current.state not in TERMINAL:
                return job.run_id  # already queued or running: starting twice is a no-op
            self._runs[job.run_id] = RunState(job)
        threading.Thread(target=self._run_quietly, args=(job,), name=f"run-{job.run_id}", daemon=True).start()
        return job.run_id

    def _run_quietly(self, job: trainer_pb2.TrainingJob) -> None:
        try:
            self.run(job)
        except Exception:
            log.exception("run %s failed", job.run_id)

    def run(self, job: trainer_pb2.TrainingJob) -> trainer_pb2.RunResult:
        """Train in the calling thread (after any run in progress); records state throughout."""
        job = jobs.normalise(job)
        with self._cond:
            state = self._runs.get(job.run_id)
            if state is None or state.state in TERMINAL:
                state = RunState(job)
                self._runs[job.run_id] = state
        with self._gpu:
            if state.cancel.is_set():
                result = trainer_pb2.RunResult(
                    study_id=job.study_id, run_id=job.run_id, job=job, status="cancelled"
                )
                self._finish(state, result)
                return result
            self._update(state, state="running")
            try:
                result = self._execute(job, state)
            except Exception as exc:
                failed = trainer_pb2.RunResult(
                    study_id=job.study_id,
                    run_id=job.run_id,
                    job=job,
                    status="failed",
                    error=f"{type(exc).__name__}: {exc}"[:4000],
                )
                # Only bad input is final; anything else may succeed on redelivery (resuming
                # from the checkpoint), so it is not announced as a failed run.
                self._finish(state, failed, announce=isinstance(exc, InvalidInput | PreconditionFailed))
                raise
            self._finish(state, result)
            return result

    def _execute(self, job: trainer_pb2.TrainingJob, state: RunState) -> trainer_pb2.RunResult:
        """Train here, or as a TrainJob when the recipe needs more than one process."""
        recipe = self._remote_recipe(job)
        if recipe is not None and self.remote is not None:
            return self.remote.run(job, recipe, state.cancel)
        return run_training(
            job,
            self.store,
            progress=lambda p: self._progress(state, p),
            cancel=state.cancel,
            options=self.options,
        )

    def _progress(self, state: RunState, p: Progress) -> None:
        self._update(state, step=p.step, total_steps=p.total_steps, loss=p.loss)

    def _update(self, run: RunState, **changes: object) -> None:
        with self._cond:
            for k, v in changes.items():
                setattr(run, k, v)
            run.version += 1
            self._cond.notify_all()

    def _finish(self, state: RunState, result: trainer_pb2.RunResult, *, announce: bool = True) -> None:
        self._update(state, state=result.status or "done", result=result, step=result.steps or state.step)
        if announce and self.on_result is not None:
            try:
                self.on_result(result)
            except Exception:
                log.exception("publishing the result of run %s failed", result.run_id)

    # -- observing ---------------------------------------------------------------------
    def get(self, run_id: str) -> RunState:
        with self._cond:
            if run_id in self._runs:
                return self._runs[run_id]
        raise KeyError(f"no run {run_id!r} in this trainer")

    def watch(
        self,
        run_id: str,
        stop: Callable[[], bool] = lambda: False,
        poll_s: float = 1.0,
    ) -> Iterator[trainer_pb2.RunProgress]:
        """Snapshots on every change until the run ends (or `stop()` says the client left)."""
        state = self.get(run_id)
        seen = -1
        while True:
            with self._cond:
                if state.version == seen:
                    self._cond.wait(poll_s)
                if state.version == seen:
                    if stop():
                        return
                    continue
                seen = state.version
                snap = state.snapshot()
            yield snap
            if snap.state in TERMINAL:
                return

    def cancel(self, run_id: str) -> trainer_pb2.RunProgress:
        state = self.get(run_id)
        state.cancel.set()
        return state.snapshot()


def build_manager(ctx: ServiceContext, options: TrainOptions | None = None) -> RunManager:
    """The process's RunManager for this context, publishing results on "run-results"."""
    opts = options or TrainOptions.from_env(ctx.config.data_dir)

    def publish(result: trainer_pb2.RunResult) -> None:
        ctx.publish("run-results", result.SerializeToString(), key=result.run_id)
        ctx.bus.flush()

    return RunManager(ctx.store, opts, on_result=publish, remote=trainjob_runner(ctx.store))


def trainjob_runner(store: ObjectStore, settings: TrainJobSettings | None = None) -> TrainJobRunner | None:
    """The TrainJob runner where SYNSCALE_TRAINJOB=1 says the trainer may submit them."""
    settings = settings or TrainJobSettings.from_env()
    if not settings.enabled:
        return None
    from synscale_trainer.trainjob_api import TrainJobApi, api_client  # the Kubernetes client
    from synscale_trainer.trainjob_runs import TrainJobRunner

    return TrainJobRunner(store, settings, TrainJobApi(api_client(), settings.namespace))
