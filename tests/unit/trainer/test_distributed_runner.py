"""The data-parallel runner in this process, as a world of one rank (gloo): FSDP, bf16, refusals."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch.distributed as dist

from synscale.errors import InvalidInput, PreconditionFailed
from synscale.store.file import FileStore
from synscale.v1 import trainer_pb2
from synscale_trainer import checkpoint, jobs
from synscale_trainer.distributed import (
    FSDP_MIN_PARAMS,
    ORDER,
    STORE_PREFIX,
    World,
    apply_fsdp,
    job_to_json,
    load_job,
    put_job,
    shard_units,
    train_distributed,
)
from synscale_trainer.models import build_classifier
from synscale_trainer.train import TrainOptions, run_training

MakeJob = Callable[..., trainer_pb2.TrainingJob]
ONE = World(rank=0, size=1, local_rank=0)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    yield ONE
    dist.destroy_process_group()


def test_fsdp_with_bf16_trains_and_checkpoints_the_plain_models_keys(
    cell_store: FileStore, make_job: MakeJob, options: TrainOptions, world: World
) -> None:
    job = jobs.normalise(make_job(steps=3, recipe={"parallel": "fsdp", "amp": "bf16", "data_streams": 2}))
    result = train_distributed(job, cell_store, options, world)
    assert result.status == "done" and result.steps == 3 and result.evals[0].n == 100
    state = checkpoint.load(cell_store, jobs.checkpoint_key(job), jobs.fingerprint(job))
    assert state is not None and state["order"] == ORDER and state["complete"]
    plain = build_classifier("embedded-cnn", 10, 32)
    plain.load_state_dict(state["model"])  # whole tensors under the plain module's names


def test_a_single_process_checkpoint_is_refused_with_the_reason(
    cell_store: FileStore, make_job: MakeJob, options: TrainOptions, world: World
) -> None:
    job = make_job(steps=4)
    assert run_training(job, cell_store, options=options, cancel=lambda: True).status == "cancelled"
    with pytest.raises(PreconditionFailed, match="single-process trainer"):
        train_distributed(job, cell_store, options, world)


def test_a_job_travels_to_the_ranks_through_the_store_or_a_file(
    store: FileStore, make_job: MakeJob, tmp_path: Path
) -> None:
    job = jobs.normalise(make_job(recipe={"parallel": "fsdp", "data_streams": 16}))
    ref = put_job(store, job)
    assert ref.startswith(STORE_PREFIX) and ref.endswith(f"{job.run_id}/job.json")
    assert load_job(ref, store) == job
    path = tmp_path / "job.json"
    path.write_text(job_to_json(job))
    assert load_job(str(path), store) == job
    path.write_text('{"study_id": 3, "nope": 1}')
    with pytest.raises(InvalidInput, match="--job"):
        load_job(str(path), store)


def test_outside_torchrun_the_entry_point_says_how_to_start_it() -> None:
    with pytest.raises(PreconditionFailed, match="torchrun"):
        World.from_env({})


def test_fsdp_units_are_the_blocks_of_a_vit_and_the_whole_of_a_small_model() -> None:
    from torchvision.models import vit_b_16

    vit = vit_b_16(weights=None)
    units = shard_units(vit, FSDP_MIN_PARAMS)
    blocks = list(vit.encoder.layers)
    assert all(b in units for b in blocks) and units[-1] is vit
    assert all(units.index(b) < units.index(vit) for b in blocks)  # inner before outer
    cnn = build_classifier("embedded-cnn", 10, 32)
    assert shard_units(cnn, FSDP_MIN_PARAMS) == [cnn]


def test_fsdp_shards_a_vit_block_by_block_and_gathers_it_whole(world: World) -> None:
    import torch
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict
    from torchvision.models.vision_transformer import VisionTransformer

    def tiny() -> VisionTransformer:
        torch.manual_seed(0)
        return VisionTransformer(32, 8, num_layers=2, num_heads=2, hidden_dim=32, mlp_dim=64, num_classes=10)

    plain, sharded = tiny(), apply_fsdp(tiny(), min_params=7000)
    assert len(shard_units(tiny(), 7000)) == 3  # the two encoder blocks, then the root
    x = torch.randn(4, 3, 32, 32)
    # the optimizer is made before any forward, as the runner does: FSDP2 keeps the root's
    # parameters unsharded after a forward, and an optimizer made then would hold those
    optimizer = torch.optim.AdamW(sharded.parameters(), lr=1e-3)
    with torch.no_grad():
        torch.testing.assert_close(sharded(x), plain(x))
    sharded(x).square().mean().backward()
    optimizer.step()
    model_state, _ = get_state_dict(sharded, optimizer, options=StateDictOptions(full_state_dict=True))
    assert set(model_state) == set(plain.state_dict())


def test_clip_trains_under_ddp_and_is_evaluated_zero_shot(
    cell_store: FileStore, make_job: MakeJob, options: TrainOptions, world: World
) -> None:
    # per-rank negatives (docs/scaling.md): with one rank, the global batch's loss
    job = make_job(
        kind="clip",
        arch="embedded-clip",
        steps=3,
        recipe={"kind": "clip", "arch": "embedded-clip", "lr": 1e-3, "data_streams": 2},
    )
    result = train_distributed(job, cell_store, options, world)
    assert result.status == "done" and result.steps == 3
    assert 0 < result.train_loss < 10 and 0 <= result.evals[0].top1 <= 1
