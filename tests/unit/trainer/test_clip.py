"""CLIP: package config, offline tokenizer, 80-template zero-shot head, loss goes down."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import open_clip
import pytest
import torch

from synscale.errors import InvalidInput
from synscale.store.file import FileStore
from synscale.v1 import trainer_pb2
from synscale_trainer import clip_model
from synscale_trainer.train import Progress, TrainOptions, run_training


def test_tokenizer_is_offline_and_ships_its_vocabulary() -> None:
    from open_clip.tokenizer import default_bpe

    bpe = Path(default_bpe())
    assert bpe.is_file() and Path(open_clip.__file__).parent in bpe.parents
    tokens = clip_model.tokenizer("embedded-clip")(["a photo of a ankle boot.", "sneaker"])
    assert tokens.shape == (2, 32)  # the package config's context length
    assert int(tokens[0, 0]) == 49406 and 49407 in tokens[0].tolist()  # start / end of text


def test_embedded_config_comes_from_the_package() -> None:
    cfg = clip_model.model_config("embedded-clip")
    assert cfg["vision_cfg"]["image_size"] == 32 and cfg["embed_dim"] == 64
    assert clip_model.clip_info("ViT-B-16").image_size == 224  # the real architecture is known too
    with pytest.raises(InvalidInput, match="arch: unknown CLIP model"):
        clip_model.model_config("ViT-Z-99")


def test_zero_shot_head_averages_the_80_templates() -> None:
    assert len(clip_model.templates()) == 80
    torch.manual_seed(0)
    model = clip_model.build_clip("embedded-clip")
    head = clip_model.zero_shot_head(model, "embedded-clip", ["coat", "bag", "sneaker"])
    assert head.shape == (64, 3)
    assert torch.allclose(head.norm(dim=0), torch.ones(3), atol=1e-5)
    logits = clip_model.ZeroShotClassifier(model, head)(torch.randn(4, 3, 32, 32))
    assert logits.shape == (4, 3)


@pytest.mark.slow
def test_tiny_clip_loss_decreases(
    cell_store: FileStore,
    options: TrainOptions,
    make_job: Callable[..., trainer_pb2.TrainingJob],
) -> None:
    losses: list[float] = []

    def progress(p: Progress) -> None:
        if p.phase == "train":
            losses.append(p.loss)

    job = make_job(
        kind="clip",
        arch="embedded-clip",
        steps=50,
        batch_size=32,
        n_per_class=20,
        real_per_class=5,
        recipe={"kind": "clip", "arch": "embedded-clip", "lr": 1e-3, "weight_decay": 0.1},
    )
    result = run_training(job, cell_store, progress=progress, options=options)
    assert result.status == "done" and result.steps == 50 and len(losses) == 50
    first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    assert last < first - 0.25, (first, last)  # starts near ln(32) = 3.47
    (metrics,) = result.evals
    assert metrics.set_name == "fashion-mnist-test" and metrics.n == 100
    assert 0 <= metrics.top1 <= metrics.top5 <= 1 and metrics.loss > 0
