"""One training run: validate, train (resuming from a checkpoint), evaluate, record.

`run_training` is the single entry point shared by the worker, the gRPC servicer, the
CLI and the embedded runner. Everything that can be wrong with a job (unknown arch, N
beyond the data, empty cells, unreadable eval folders) is checked by `prepare` from
listings and metadata alone, before a model is built or an image decoded.
"""

from __future__ import annotations

import contextlib
import logging
import math
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from synscale.errors import InvalidInput, PreconditionFailed
from synscale.settings import Env, pick_device
from synscale.store.base import ObjectStore
from synscale.study import TrainingRecipe
from synscale.v1 import trainer_pb2
from synscale_trainer import checkpoint, clip_model, jobs
from synscale_trainer import classes as classsets
from synscale_trainer.cache import Prefetcher, ShardCache
from synscale_trainer.classes import ClassSet
from synscale_trainer.evalsets import EvalSet, resolve_eval_sets
from synscale_trainer.evaluate import cpu_memory_format, evaluate
from synscale_trainer.models import arch_info, build_classifier
from synscale_trainer.plan import ShardSource, TrainingPlan, plan_training_set
from synscale_trainer.recipe import make_optimizer, make_schedule, parse_recipe, total_steps
from synscale_trainer.stream import StreamingDataset, make_loader
from synscale_trainer.transforms import Preprocess

log = logging.getLogger(__name__)
LOSS_WINDOW = 50  # the reported train loss is the mean over the last steps
CLIP_GRAD_NORM = 1.0
MAX_LOGIT_SCALE = math.log(100.0)


@dataclass
class TrainOptions:
    """How to run (not what): machine-local settings that never change the result."""

    cache_dir: Path = field(default_factory=lambda: Path(tempfile.gettempdir()) / "synscale-shard-cache")
    num_workers: int = 2
    device: str = ""  # "" = cuda when available, else cpu
    checkpoint_every: int = 0  # steps; 0 = about 20 checkpoints per run (at least every 50 steps)
    checkpoint_every_s: float = 600.0  # also checkpoint after this much time; 0 = off
    shuffle_buffer: int = 2000
    interleave: int = 16
    eval_batch_size: int = 256
    prefetch_threads: int = 4

    @classmethod
    def from_env(cls, data_dir: Path | str = "runs", env: dict[str, str] | None = None) -> TrainOptions:
        e = Env(env)  # bad values are SettingsErrors naming the variable
        return cls(
            cache_dir=Path(e.text("SYNSCALE_TRAINER_CACHE_DIR", str(Path(data_dir) / "cache" / "shards"))),
            num_workers=e.integer("SYNSCALE_TRAINER_WORKERS", 2, minimum=0),
            device=e.device(),
            checkpoint_every_s=e.number("SYNSCALE_TRAINER_CHECKPOINT_S", 600.0, minimum=0.0),
        )


@dataclass(frozen=True)
class Progress:
    run_id: str
    phase: str  # train | eval | done
    step: int
    total_steps: int
    loss: float


ProgressFn = Callable[[Progress], None]
CancelFn = Callable[[], bool]


@dataclass
class PreparedRun:
    job: trainer_pb2.TrainingJob
    recipe: TrainingRecipe
    classes: ClassSet
    plan: TrainingPlan
    eval_sets: list[EvalSet]
    steps: int
    train_pre: Preprocess
    eval_pre: Preprocess
    build: Callable[[], nn.Module]

    @property
    def is_clip(self) -> bool:
        return self.job.kind == "clip"


def prepare(job: trainer_pb2.TrainingJob, store: ObjectStore | None, options: TrainOptions) -> PreparedRun:
    """Every check a job needs, from listings only; raises InvalidInput / PreconditionFailed."""
    job = jobs.normalise(job)
    if store is not None and job.bucket and job.bucket != store.bucket:
        raise PreconditionFailed(
            f"bucket: job names bucket {job.bucket!r}; this trainer's store is {store.bucket!r}"
        )
    recipe = parse_recipe(job.recipe_json, kind=job.kind, arch=job.arch)
    if recipe.kind != job.kind:
        raise InvalidInput(
            "recipe_json.kind", f"recipe is {recipe.kind!r} but the job's kind is {job.kind!r}"
        )
    classes = classsets.for_job(job)
    size = int(job.image_size)
    if job.kind == "clip":
        info = clip_model.clip_info(job.arch)
        train_pre = info.preprocess(size, augment=recipe.augment)
        build: Callable[[], nn.Module] = lambda: clip_model.build_clip(job.arch, size)  # noqa: E731
    else:
        arch = arch_info(job.arch)
        train_pre = arch.preprocess(size, augment=recipe.augment)
        build = lambda: build_classifier(job.arch, len(classes), size)  # noqa: E731
    plan = plan_training_set(
        store,
        study_id=job.study_id,
        cells=jobs.cells_of(job),
        classes=classes,
        n_per_class=int(job.n_per_class),
        real_per_class=int(job.real_per_class),
        real_path=job.real_path,
        class_n={k: int(v) for k, v in job.class_n_per_class.items()},
    )
    eval_sets = resolve_eval_sets(
        list(job.eval_sets),
        classes,
        dict(job.eval_paths),
        limit=int(job.eval_limit),
        workers=options.num_workers,
    )
    steps = total_steps(recipe, plan.n_images)
    return PreparedRun(
        job, recipe, classes, plan, eval_sets, steps, train_pre, train_pre.with_augment(False), build
    )


def _device(options: TrainOptions) -> torch.device:
    """The options' device (SYNSCALE_DEVICE or --device), else synscale.settings.pick_device."""
    return torch.device(options.device or pick_device(torch.cuda.is_available, {}))


def _amp(
    device: torch.device, mode: str = "auto"
) -> tuple[Callable[[], contextlib.AbstractContextManager[Any]], bool]:
    """(autocast factory, use a grad scaler) for the recipe's `amp`.

    auto: bf16 where supported, else fp16 (with a scaler), on CUDA; none on CPU.
    bf16: bf16 autocast on any device (CPU included), no scaler. off: full precision.
    """
    if mode == "bf16":
        return (lambda: torch.autocast(device.type, dtype=torch.bfloat16)), False
    if mode == "off" or device.type != "cuda":
        return contextlib.nullcontext, False
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return (lambda: torch.autocast("cuda", dtype=dtype)), dtype == torch.float16


def _cancelled(cancel: CancelFn | threading.Event | None) -> bool:
    if cancel is None:
        return False
    if isinstance(cancel, threading.Event):
        return cancel.is_set()
    return bool(cancel())


def run_training(
    job: trainer_pb2.TrainingJob,
    store: ObjectStore,
    *,
    progress: ProgressFn | None = None,
    cancel: CancelFn | threading.Event | None = None,
    options: TrainOptions | None = None,
) -> trainer_pb2.RunResult:
    """Train and evaluate one job; returns its RunResult (status done or cancelled).

    A run whose result.json exists is not retrained: the stored result is returned. A run
    with a checkpoint continues from it. Bad input raises InvalidInput/PreconditionFailed
    before any compute.
    """
    options = options or TrainOptions()
    job = jobs.normalise(job)
    done = jobs.load_result(store, job)
    if done is not None and done.status == "done":
        log.info("run %s already finished; returning its stored result", job.run_id)
        return done
    run = prepare(job, store, options)
    return _Runner(run, store, options, progress, cancel).run()


class _Runner:
    def __init__(
        self,
        run: PreparedRun,
        store: ObjectStore,
        options: TrainOptions,
        progress: ProgressFn | None,
        cancel: CancelFn | threading.Event | None,
    ) -> None:
        self.run_ = run
        self.job = run.job
        self.store = store
        self.options = options
        self.progress = progress
        self.cancel = cancel
        self.device = _device(options)
        self.autocast, use_scaler = _amp(self.device, run.recipe.amp)
        torch.manual_seed(int(self.job.seed))
        self.model = run.build().to(self.device)
        # channels_last on a CPU: faster convs. Not under FSDP, which shards contiguous
        # parameters only ("FSDP does not support non-contiguous parameters yet").
        fsdp = run.recipe.parallel == "fsdp"
        self.layout = None if fsdp else cpu_memory_format(self.model, self.device)
        if self.layout is not None:
            self.model.to(memory_format=self.layout)
        self.net = self._wrap(self.model)  # what the training step calls
        self.optimizer = make_optimizer(self.model, run.recipe, clip=run.is_clip)
        self.schedule = make_schedule(self.optimizer, run.steps)
        self.scaler = torch.amp.GradScaler("cuda", enabled=use_scaler)
        self.tokenizer = clip_model.tokenizer(self.job.arch) if run.is_clip else None
        self.loss_fn = nn.CrossEntropyLoss(label_smoothing=run.recipe.label_smoothing)
        self.step = self.epoch = self.batch_in_epoch = 0
        self.losses: deque[float] = deque(maxlen=LOSS_WINDOW)
        self.train_seconds = 0.0
        self.complete = False
        self.ckpt_key = jobs.checkpoint_key(self.job)
        self.fingerprint = jobs.fingerprint(self.job)
        every = options.checkpoint_every or max(50, run.steps // 20)
        self.checkpoint_every = max(1, every)

    def _wrap(self, model: nn.Module) -> nn.Module:
        """The module the training step runs: the model, compiled when the recipe says so."""
        return torch.compile(model) if self.run_.recipe.compile else model  # type: ignore[return-value]

    # -- checkpoint state ---------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "run_id": self.job.run_id,
            "step": self.step,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "complete": self.complete,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": torch.get_rng_state(),
            "losses": list(self.losses),
            "train_seconds": self.train_seconds,
        }

    def _restore(self) -> None:
        state = checkpoint.load(self.store, self.ckpt_key, self.fingerprint)
        if state is None:
            return
        self._restore_weights(state)
        self._restore_position(state)
        log.info(
            "run %s resumes at step %d/%d (epoch %d, batch %d)",
            self.job.run_id,
            self.step,
            self.run_.steps,
            self.epoch,
            self.batch_in_epoch,
        )

    def _restore_weights(self, state: dict[str, Any]) -> None:
        """Model and optimizer state from a checkpoint."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])

    def _restore_position(self, state: dict[str, Any]) -> None:
        """Everything else a checkpoint holds: schedule, scaler, RNG, data position, losses."""
        self.schedule.load_state_dict(state["schedule"])
        self.scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["rng"])
        self.step, self.epoch = int(state["step"]), int(state["epoch"])
        self.batch_in_epoch = int(state["batch_in_epoch"])
        self.losses.extend(float(x) for x in state["losses"])
        self.train_seconds = float(state["train_seconds"])
        self.complete = bool(state["complete"])

    def _save(self) -> None:
        checkpoint.save(self.store, self.ckpt_key, self._state())

    def _emit(self, phase: str) -> None:
        if self.progress is not None:
            loss = self.losses[-1] if self.losses else float("nan")
            self.progress(Progress(self.job.run_id, phase, self.step, self.run_.steps, loss))

    # -- the loop -----------------------------------------------------------------------
    def run(self) -> trainer_pb2.RunResult:
        self._restore()
        if not self.complete:
            cancelled = self._train()
            if cancelled:
                return self._result("cancelled", [])
            self.complete = True
            self._save()
        self._emit("eval")
        evals = self._evaluate()
        result = self._result("done", evals)
        self.store.put(
            jobs.result_key(self.job), jobs.result_to_json(result), content_type="application/json"
        )
        self._emit("done")
        return result

    def _dataset(self) -> StreamingDataset:
        run = self.run_
        return StreamingDataset(
            run.plan.sources,
            self.options.cache_dir,
            run.train_pre,
            run.classes.names,
            seed=int(self.job.seed),
            shuffle_buffer=self.options.shuffle_buffer,
            interleave=self.options.interleave,
        )

    def _train(self) -> bool:
        """Train to the planned step count; True when cancelled (checkpoint saved)."""
        dataset = self._dataset()
        prefetch = Prefetcher(self.store, ShardCache(self.options.cache_dir), self.options.prefetch_threads)
        self._clock = (time.monotonic(), self.train_seconds)
        self._last_save = time.monotonic()
        try:
            while self.step < self.run_.steps:
                shards = self._epoch_shards(dataset)
                prefetch.submit([(s.key, s.sha256) for s in shards])  # in the order the epoch reads them
                dataset.set_epoch(self.epoch)
                outcome = self._epoch(dataset)
                if outcome == "cancelled":
                    return True
                if outcome == "empty":
                    raise PreconditionFailed(f"run {self.job.run_id}: an epoch yielded no images")
                if outcome == "epoch-end":
                    self.epoch += 1
                    self.batch_in_epoch = 0
        finally:
            prefetch.close()
        return False

    def _epoch_shards(self, dataset: StreamingDataset) -> list[ShardSource]:
        """The shards this process reads in the current epoch, in reading order."""
        return [s for s in dataset.epoch_order(self.epoch) if isinstance(s, ShardSource)]

    def _epoch(self, dataset: StreamingDataset) -> str:
        """Train on the rest of this epoch: 'epoch-end', 'finished', 'cancelled' or 'empty'."""
        trained = 0
        for images, labels, texts in self._epoch_batches(dataset):
            trained += 1
            self._step(images, labels, texts)
            started, base = self._clock
            self.train_seconds = base + time.monotonic() - started
            self._emit("train")
            if self._checkpoint_due():
                self._save()
                self._last_save = time.monotonic()
            if _cancelled(self.cancel):
                self._save()
                log.info("run %s cancelled at step %d", self.job.run_id, self.step)
                return "cancelled"
            if self.step >= self.run_.steps:
                return "finished"
        return "empty" if trained == 0 and self.batch_in_epoch == 0 else "epoch-end"

    def _checkpoint_due(self) -> bool:
        every_s = self.options.checkpoint_every_s
        timed = every_s > 0 and time.monotonic() - self._last_save >= every_s
        return timed or self.step % self.checkpoint_every == 0

    def _epoch_batches(
        self, dataset: StreamingDataset
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor, list[str]]]:
        """This epoch's batches after the ones a checkpoint says were already consumed."""
        loader = make_loader(
            dataset,
            self.run_.recipe.batch_size,
            self.options.num_workers,
            pin_memory=self.device.type == "cuda",
        )
        for i, batch in enumerate(loader):
            if i < self.batch_in_epoch:
                continue  # replayed data position of a resumed run: read, not trained on
            yield batch

    def _step(self, images: torch.Tensor, labels: torch.Tensor, texts: list[str]) -> None:
        loss = self._loss(images, labels, texts)
        self._optimize(loss)
        self._advance(float(loss.detach()))

    def _loss(self, images: torch.Tensor, labels: torch.Tensor, texts: list[str]) -> torch.Tensor:
        """The batch's mean loss (what backward is called on)."""
        model = self.net
        model.train()
        images = images.to(self.device, non_blocking=True)
        if self.layout is not None:
            images = images.contiguous(memory_format=self.layout)
        with self.autocast():
            if self.run_.is_clip:
                assert self.tokenizer is not None
                tokens = self.tokenizer(list(texts)).to(self.device)
                return clip_model.contrastive_loss(model, images, tokens)
            return self.loss_fn(model(images), labels.to(self.device))  # type: ignore[no-any-return]

    def _optimize(self, loss: torch.Tensor) -> None:
        model = self.model
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.run_.is_clip or "vit" in self.job.arch.lower():
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), CLIP_GRAD_NORM)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.schedule.step()
        if self.run_.is_clip:
            with torch.no_grad():
                model.logit_scale.clamp_(0, MAX_LOGIT_SCALE)  # type: ignore[union-attr,operator]

    def _advance(self, value: float) -> None:
        """Count the step and record its (global mean) loss."""
        self.step += 1
        self.batch_in_epoch += 1
        if not math.isfinite(value):
            raise PreconditionFailed(
                f"run {self.job.run_id}: loss is {value} at step {self.step}; lower the lr"
            )
        self.losses.append(value)
        if self.step == 1 or self.step % max(1, self.run_.steps // 10) == 0:
            log.info("run %s step %d/%d loss %.4f", self.job.run_id, self.step, self.run_.steps, value)

    def _evaluate(self) -> list[trainer_pb2.EvalMetrics]:
        run = self.run_
        classifier: nn.Module = self.model
        if run.is_clip:
            head = clip_model.zero_shot_head(self.model, self.job.arch, run.classes.names, self.device)
            classifier = clip_model.ZeroShotClassifier(self.model, head)
        out = []
        for es in run.eval_sets:
            metrics = evaluate(
                classifier,
                es,
                run.eval_pre,
                run.classes,
                device=self.device,
                batch_size=self.options.eval_batch_size,
                autocast=self.autocast,
            )
            log.info(
                "run %s %s: top1 %.4f top5 %.4f loss %.4f (n=%d)",
                self.job.run_id,
                es.name,
                metrics.top1,
                metrics.top5,
                metrics.loss,
                metrics.n,
            )
            out.append(metrics)
        return out

    def _result(self, status: str, evals: list[trainer_pb2.EvalMetrics]) -> trainer_pb2.RunResult:
        losses = list(self.losses)
        return trainer_pb2.RunResult(
            study_id=self.job.study_id,
            run_id=self.job.run_id,
            job=self.job,
            evals=evals,
            checkpoint_key=self.ckpt_key,
            status=status,
            train_seconds=self.train_seconds,
            steps=self.step,
            train_images=self.run_.plan.n_images,
            train_loss=sum(losses) / len(losses) if losses else 0.0,
            device=str(self.device),
        )
