"""Training runs: kill-and-resume equals uninterrupted, real data beats chance, bad input, idempotency."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch

from synscale.errors import InvalidInput, PreconditionFailed
from synscale.store.file import FileStore
from synscale.v1 import trainer_pb2
from synscale_trainer import jobs
from synscale_trainer.fixtures import write_fake_cell
from synscale_trainer.train import Progress, TrainOptions, run_training

from .conftest import STUDY, cell

MakeJob = Callable[..., trainer_pb2.TrainingJob]


class Crash(Exception):
    """Stands in for a killed process: nothing is saved on the way out."""


@pytest.fixture
def deterministic() -> Iterator[None]:
    before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    yield
    torch.use_deterministic_algorithms(before)


def _fresh_store(root: Path) -> FileStore:
    store = FileStore(root, "synscale")
    write_fake_cell(store, STUDY, per_class=12, shard_size=5)
    return store


def _metrics(result: trainer_pb2.RunResult) -> list[tuple[str, float, float, float, dict[str, float]]]:
    return [(e.set_name, e.top1, e.top5, e.loss, dict(e.per_class)) for e in result.evals]


def test_killed_and_cancelled_run_resumes_to_the_same_metrics(
    tmp_path: Path,
    make_job: MakeJob,
    deterministic: None,
) -> None:
    # 12 synthetic + 2 real images per class = 140 images = 9 batches of 16 per epoch: the
    # kill lands mid-epoch, the cancel in the next epoch, and training crosses epochs.
    job = make_job(
        steps=16, n_per_class=12, real_per_class=2, seed=7, eval_sets=["fashion-mnist-test", "rotated"]
    )
    opts = dict(num_workers=0, checkpoint_every_s=0, shuffle_buffer=32, checkpoint_every=3)

    store_a = _fresh_store(tmp_path / "a")
    straight = run_training(job, store_a, options=TrainOptions(cache_dir=tmp_path / "ca", **opts))  # type: ignore[arg-type]

    store_b = _fresh_store(tmp_path / "b")
    options_b = TrainOptions(cache_dir=tmp_path / "cb", **opts)  # type: ignore[arg-type]
    steps_seen: list[int] = []

    def crash_at_8(p: Progress) -> None:
        steps_seen.append(p.step)
        if p.step == 8:
            raise Crash

    with pytest.raises(Crash):
        run_training(job, store_b, progress=crash_at_8, options=options_b)
    ckpt = store_b.stat(jobs.checkpoint_key(jobs.normalise(job)))
    assert ckpt is not None and ckpt.metadata["step"] == "6"  # the last periodic checkpoint

    steps_seen.clear()
    cancelled = run_training(
        job,
        store_b,
        progress=lambda p: steps_seen.append(p.step),
        cancel=lambda: bool(steps_seen) and steps_seen[-1] >= 11,
        options=options_b,
    )
    assert cancelled.status == "cancelled" and cancelled.steps == 11
    assert steps_seen[0] == 7  # resumed after step 6, not from scratch
    assert not store_b.exists(jobs.result_key(jobs.normalise(job)))

    steps_seen.clear()
    resumed = run_training(job, store_b, progress=lambda p: steps_seen.append(p.step), options=options_b)
    assert steps_seen[0] == 12
    assert resumed.status == straight.status == "done" and resumed.steps == straight.steps == 16
    assert _metrics(resumed) == _metrics(straight)
    assert resumed.train_loss == straight.train_loss


@pytest.mark.slow
def test_real_fashion_mnist_beats_chance_by_a_wide_margin(
    store: FileStore, options: TrainOptions, make_job: MakeJob
) -> None:
    job = make_job(
        cells=[],
        n_per_class=0,
        real_per_class=200,
        steps=120,
        batch_size=32,
        eval_limit=1000,
        recipe={"lr": 3e-3},
    )
    result = run_training(job, store, options=options)
    (metrics,) = result.evals
    assert result.train_images == 2000
    assert metrics.top1 > 0.6, metrics.top1  # chance is 0.1
    assert len(metrics.per_class) == 10


@pytest.fixture
def no_compute(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("a model was built for a job that should have been rejected")

    monkeypatch.setattr("synscale_trainer.train._Runner.__init__", forbidden)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"arch": "resnet-9000"}, "arch"),
        ({"n_per_class": 31}, "n_per_class"),
        ({"cells": [cell(cfg=9.0)]}, "cells"),
        ({"kind": "gan"}, "kind"),
        ({"eval_sets": ["fashion-mnist-test", "blurred"]}, "eval_sets"),
        ({"recipe_json": '{"epochs": -1}'}, "recipe_json"),
    ],
)
def test_bad_input_fails_before_any_compute(
    cell_store: FileStore,
    options: TrainOptions,
    make_job: MakeJob,
    no_compute: None,
    fields: dict[str, object],
    field: str,
) -> None:
    with pytest.raises(InvalidInput) as err:
        run_training(make_job(**fields), cell_store, options=options)
    assert err.value.field == field


def test_ood_folder_with_unknown_classes_fails_before_compute(
    tmp_path: Path,
    store: FileStore,
    options: TrainOptions,
    make_job: MakeJob,
    no_compute: None,
) -> None:
    from synscale import classes as core

    for wnid in core.imagenet().ids:  # a valid real set: one (never read) image per class
        (tmp_path / "train" / wnid).mkdir(parents=True)
        (tmp_path / "train" / wnid / "x.png").write_bytes(b"")
    sketch = tmp_path / "sketch" / "not-a-wnid"
    sketch.mkdir(parents=True)
    job = make_job(
        cells=[],
        n_per_class=0,
        real_per_class=1,
        arch="resnet50",
        class_set="imagenet",
        real_path=str(tmp_path / "train"),
        eval_sets=["imagenet-sketch"],
        eval_paths={"imagenet-sketch": str(tmp_path / "sketch")},
    )
    with pytest.raises(InvalidInput, match=r"eval_paths\[imagenet-sketch\].*'not-a-wnid'"):
        run_training(job, store, options=options)


def test_bucket_mismatch_is_refused(
    cell_store: FileStore, options: TrainOptions, make_job: MakeJob, no_compute: None
) -> None:
    with pytest.raises(PreconditionFailed, match="bucket"):
        run_training(make_job(bucket="elsewhere"), cell_store, options=options)


def test_a_finished_run_is_not_retrained(
    cell_store: FileStore, options: TrainOptions, make_job: MakeJob
) -> None:
    job = make_job(steps=3)
    first = run_training(job, cell_store, options=options)
    stored = jobs.load_result(cell_store, jobs.normalise(job))
    assert stored == first and first.run_id == jobs.derive_run_id(job)
    assert first.checkpoint_key == jobs.checkpoint_key(jobs.normalise(job)) and cell_store.exists(
        first.checkpoint_key
    )

    def must_not_train(p: Progress) -> None:
        raise AssertionError("retrained a finished run")

    again = run_training(job, cell_store, progress=must_not_train, options=options)
    assert again == first


def test_bf16_autocast_trains_on_cpu(cell_store: FileStore, make_job: MakeJob, options: TrainOptions) -> None:
    job = make_job(steps=3, recipe={"amp": "bf16"})
    result = run_training(job, cell_store, options=options)
    assert result.status == "done" and result.steps == 3
    assert 0 < result.train_loss < 10


def test_compile_option_wraps_the_training_module(
    cell_store: FileStore, make_job: MakeJob, options: TrainOptions
) -> None:
    # plumbing only: inductor needs minutes on this 2-core CPU (a compiled 2-rank run of
    # the test job took 2m47s here against 34 s uncompiled), so no steps are trained
    from synscale_trainer.train import _Runner, prepare

    for flag in (False, True):
        run = prepare(make_job(steps=2, recipe={"compile": flag}), cell_store, options)
        runner = _Runner(run, cell_store, options, None, None)
        assert isinstance(runner.net, torch._dynamo.eval_frame.OptimizedModule) is flag
        assert set(runner.model.state_dict()) == set(run.build().state_dict())  # no _orig_mod. keys
