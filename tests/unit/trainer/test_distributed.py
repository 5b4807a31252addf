"""torchrun on CPU (gloo): 2 ranks train what 1 rank trains, and resume on another world size.

Each launch is a real `torchrun --standalone` of `synscale_trainer.distributed` training the
embedded CNN on a fixture cell (100 images in shards of 4, global batch 16, 14 steps = 2
epochs, 4 canonical streams, 2 loader workers per rank). Each rank records the sample ids
it trains on (`--seen-dir`). Stated tolerance against the 1-rank run with the same global
batch: |train loss| <= LOSS_TOL and |top-1| <= TOP1_TOL; the data are identical (same
images in the same global batches), what differs is BatchNorm's batch statistics (per
rank: 8 images instead of 16) and the order of float sums.
"""

from __future__ import annotations

import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from synscale.store.file import FileStore
from synscale.study import TrainingRecipe
from synscale.v1 import common_pb2, trainer_pb2
from synscale_trainer import jobs
from synscale_trainer.distributed import job_to_json
from synscale_trainer.fixtures import write_fake_cell
from synscale_trainer.launch import Seen, read_seen, run_local

pytestmark = pytest.mark.slow

STUDY = "study-ddp"
STEPS, BATCH, IMAGES, EPOCHS = 14, 16, 100, 2
LOSS_TOL, TOP1_TOL = 0.1, 0.1


@dataclass
class Launch:
    root: Path
    returncode: int
    log: str

    @property
    def store(self) -> FileStore:
        return FileStore(self.root / "store", "synscale")

    def seen(self) -> list[Seen]:
        return read_seen(self.root / "seen")

    def result(self, job: trainer_pb2.TrainingJob) -> trainer_pb2.RunResult:
        found = jobs.load_result(self.store, jobs.normalise(job))
        assert found is not None, f"no result.json; torchrun said:\n{self.log[-3000:]}"
        return found


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, trainer_pb2.TrainingJob]:
    root = tmp_path_factory.mktemp("ddp-base")
    store = FileStore(root / "store", "synscale")
    write_fake_cell(store, STUDY, per_class=10, shard_size=4)
    recipe = TrainingRecipe(min_steps=STEPS, max_steps=STEPS, batch_size=BATCH, data_streams=4)
    job = trainer_pb2.TrainingJob(
        study_id=STUDY,
        arch="embedded-cnn",
        cells=[common_pb2.CellId(generator="fake", cfg=2.0, strategy="classname")],
        n_per_class=10,
        seed=3,
        eval_sets=["fashion-mnist-test"],
        eval_limit=200,
        recipe_json=recipe.model_dump_json(),
    )
    (root / "job.json").write_text(job_to_json(job))
    return root, job


def _launch(
    base: tuple[Path, trainer_pb2.TrainingJob], root: Path, nproc: int, *extra: str, job: str = "job.json"
) -> Launch:
    src, _ = base
    if not (root / "store").exists():
        shutil.copytree(src / "store", root / "store")
    out = run_local(
        nproc, src / job, root / "store", "--workers", "2", "--seen-dir", str(root / "seen"), *extra
    )
    return Launch(root, out.returncode, out.stdout + out.stderr)


@pytest.fixture(scope="module")
def two(base: tuple[Path, trainer_pb2.TrainingJob], tmp_path_factory: pytest.TempPathFactory) -> Launch:
    return _launch(base, tmp_path_factory.mktemp("two"), 2)


@pytest.fixture(scope="module")
def one(base: tuple[Path, trainer_pb2.TrainingJob], tmp_path_factory: pytest.TempPathFactory) -> Launch:
    return _launch(base, tmp_path_factory.mktemp("one"), 1)


def _records(seen: list[Seen]) -> Counter[tuple[int, int, str]]:
    return Counter((s.epoch, s.step, s.uid) for s in seen)


def _close(a: trainer_pb2.RunResult, b: trainer_pb2.RunResult) -> None:
    assert abs(a.train_loss - b.train_loss) <= LOSS_TOL, (a.train_loss, b.train_loss)
    assert abs(a.evals[0].top1 - b.evals[0].top1) <= TOP1_TOL, (a.evals[0].top1, b.evals[0].top1)


def test_two_ranks_read_disjoint_shards_and_see_every_image_once_per_epoch(
    base: tuple[Path, trainer_pb2.TrainingJob], two: Launch
) -> None:
    assert two.returncode == 0, two.log[-3000:]
    seen = two.seen()
    assert {s.world for s in seen} == {2} and {s.rank for s in seen} == {0, 1}
    assert len(seen) == EPOCHS * IMAGES
    for epoch in range(EPOCHS):
        uids = Counter(s.uid for s in seen if s.epoch == epoch)
        assert len(uids) == IMAGES and set(uids.values()) == {1}
        shards = [{s.uid.rsplit(":", 1)[0] for s in seen if s.epoch == epoch and s.rank == r} for r in (0, 1)]
        assert shards[0] and shards[1] and not shards[0] & shards[1]
    assert two.result(base[1]).steps == STEPS


def test_two_ranks_train_the_same_global_batches_as_one_within_tolerance(
    base: tuple[Path, trainer_pb2.TrainingJob], one: Launch, two: Launch
) -> None:
    assert one.returncode == 0, one.log[-3000:]
    assert len(one.seen()) == len(two.seen()) == EPOCHS * IMAGES
    assert _records(one.seen()) == _records(two.seen())  # same image, same epoch, same global step
    _close(one.result(base[1]), two.result(base[1]))


@pytest.mark.parametrize(("first", "then", "kill_after"), [(2, 1, 5), (1, 2, 9)])
def test_a_killed_run_resumes_on_another_world_size_with_the_same_images(
    base: tuple[Path, trainer_pb2.TrainingJob],
    two: Launch,
    tmp_path: Path,
    first: int,
    then: int,
    kill_after: int,
) -> None:
    job = base[1]
    killed = _launch(
        base, tmp_path, first, "--kill-after-step", str(kill_after), "--checkpoint-every", str(kill_after)
    )
    assert killed.returncode != 0
    assert jobs.load_result(killed.store, jobs.normalise(job)) is None
    before = [s for s in killed.seen() if s.step <= kill_after]
    assert {s.step for s in before} == set(range(1, kill_after + 1))
    resumed = _launch(base, tmp_path, then)
    assert resumed.returncode == 0, resumed.log[-3000:]
    after = [s for s in resumed.seen() if s.world == then]
    assert min(s.step for s in after) == kill_after + 1  # resumed from the checkpoint, not from 0
    assert _records(before + after) == _records(two.seen())
    result = resumed.result(job)
    assert result.steps == STEPS
    _close(result, two.result(job))


def test_fsdp_with_bf16_on_two_ranks_trains_the_same_images(
    base: tuple[Path, trainer_pb2.TrainingJob], two: Launch, tmp_path: Path
) -> None:
    job = trainer_pb2.TrainingJob()
    job.CopyFrom(base[1])
    recipe = TrainingRecipe.model_validate_json(job.recipe_json).model_copy(
        update={"parallel": "fsdp", "amp": "bf16"}
    )
    job.recipe_json = recipe.model_dump_json()
    (base[0] / "job-fsdp.json").write_text(job_to_json(job))
    fsdp = _launch(base, tmp_path, 2, job="job-fsdp.json")
    assert fsdp.returncode == 0, fsdp.log[-3000:]
    assert _records(fsdp.seen()) == _records(two.seen())
    _close(fsdp.result(job), two.result(base[1]))
