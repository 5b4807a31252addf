"""Fixtures of the trainer tests: a FileStore with stand-in synthetic cells, tiny jobs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from synscale.store.file import FileStore
from synscale.study import TrainingRecipe
from synscale.v1 import common_pb2, trainer_pb2
from synscale_trainer.fixtures import write_fake_cell
from synscale_trainer.train import TrainOptions

STUDY = "study-t"


@pytest.fixture(autouse=True)
def _few_threads() -> Any:
    """Two cores are shared by the whole suite; one intra-op thread keeps runs predictable."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def store(tmp_path: Path) -> FileStore:
    return FileStore(tmp_path / "store", "synscale")


@pytest.fixture
def cell_store(store: FileStore) -> FileStore:
    """Two cells of 30 images per class in shards of 8 (the last shard of a class is short)."""
    write_fake_cell(store, STUDY, generator="fake", cfg=2.0, per_class=30, shard_size=8)
    write_fake_cell(store, STUDY, generator="fake", cfg=4.0, per_class=30, shard_size=8, offset=100)
    return store


@pytest.fixture
def options(tmp_path: Path) -> TrainOptions:
    return TrainOptions(cache_dir=tmp_path / "cache", num_workers=0, checkpoint_every_s=0, shuffle_buffer=64)


def cell(cfg: float = 2.0, generator: str = "fake", strategy: str = "classname") -> common_pb2.CellId:
    return common_pb2.CellId(generator=generator, cfg=cfg, strategy=strategy)


@pytest.fixture
def make_job() -> Callable[..., trainer_pb2.TrainingJob]:
    def make(steps: int = 6, batch_size: int = 16, recipe: dict[str, Any] | None = None, **fields: Any):  # type: ignore[no-untyped-def]
        r = TrainingRecipe(min_steps=steps, max_steps=steps, batch_size=batch_size, **(recipe or {}))
        fields.setdefault("study_id", STUDY)
        fields.setdefault("arch", "embedded-cnn")
        fields.setdefault("cells", [cell()])
        fields.setdefault("n_per_class", 10)
        fields.setdefault("eval_sets", ["fashion-mnist-test"])
        fields.setdefault("eval_limit", 100)
        fields.setdefault("recipe_json", r.model_dump_json())
        return trainer_pb2.TrainingJob(**fields)

    return make
