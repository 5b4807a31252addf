"""Training of the embedded T2I model: it learns, is deterministic and resumes exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from synscale.datasets import fashion_mnist
from synscale_generator.embedded.captions import CLASS_TEXT, all_captions, caption_weights
from synscale_generator.embedded.model import TINY_CONFIG
from synscale_generator.embedded.testing import HashTextEncoder
from synscale_generator.embedded.train import CaptionTable, TrainConfig, Trainer
from synscale_generator.embedded.weights import WEIGHTS_NAME, load_weights

CONFIG = TrainConfig(
    seed=3, batch_size=32, lr=2e-3, warmup_steps=5, checkpoint_every=4, limit_images=256, model=TINY_CONFIG
)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    split = fashion_mnist.load("train")
    return split.images[:256], split.labels[:256]


@pytest.fixture(scope="module")
def captions() -> CaptionTable:
    return CaptionTable.default(HashTextEncoder())


def _trainer(out: Path, data, captions, config: TrainConfig = CONFIG) -> Trainer:
    return Trainer(config, out, data[0], data[1], captions)


def test_loss_decreases_on_a_small_subset(tmp_path: Path, data, captions) -> None:
    trainer = _trainer(tmp_path, data, captions)
    losses = [trainer.train_step() for _ in range(40)]
    assert all(np.isfinite(losses))
    assert np.mean(losses[-10:]) < 0.7 * np.mean(losses[:10])


def test_resume_continues_exactly(tmp_path: Path, data, captions) -> None:
    straight = _trainer(tmp_path / "a", data, captions)
    straight.run(max_steps=8, progress=False)

    first = _trainer(tmp_path / "b", data, captions)
    first.run(max_steps=5, progress=False)  # checkpoints at 4 and on exit at 5
    resumed = _trainer(tmp_path / "b", data, captions)
    assert resumed.try_resume() and resumed.step == 5
    result = resumed.run(max_steps=8, progress=False)

    assert result.steps == 8 and resumed.step == straight.step == 8
    for key, value in straight.ema.state_dict().items():
        assert torch.equal(value, resumed.ema.state_dict()[key]), key
    for key, value in straight.unet.state_dict().items():
        assert torch.equal(value, resumed.unet.state_dict()[key]), key


def test_checkpoint_of_another_config_is_refused(tmp_path: Path, data, captions) -> None:
    _trainer(tmp_path, data, captions).run(max_steps=1, progress=False)
    other = TrainConfig(**{**CONFIG.__dict__, "seed": 4})
    with pytest.raises(ValueError, match="different training config"):
        _trainer(tmp_path, data, captions, other).try_resume()


def test_export_round_trips_through_load_weights(tmp_path: Path, data, captions) -> None:
    trainer = _trainer(tmp_path, data, captions)
    result = trainer.run(max_steps=2, progress=False)
    digest = trainer.export(tmp_path / WEIGHTS_NAME, result, command="test")
    assert (tmp_path / (WEIGHTS_NAME + ".sha256")).read_text().split()[0] == digest
    loaded = load_weights(tmp_path / WEIGHTS_NAME)
    assert loaded.model_config == TINY_CONFIG
    assert loaded.info["steps"] == 2 and loaded.info["seed"] == 3
    for key, value in trainer.ema.state_dict().items():  # fp16 storage of fp32 weights
        assert torch.allclose(loaded.unet.state_dict()[key], value, atol=1e-3, rtol=1e-3), key


def test_captions_cover_every_strategy_style() -> None:
    caps = all_captions()
    assert len(caps) == len(CLASS_TEXT) == len(fashion_mnist.CLASSES)
    for k, (_, name) in enumerate(fashion_mnist.CLASSES):
        assert name in caps[k] and f"a photo of a {name}" in caps[k]
        assert f"{name}, {CLASS_TEXT[k].description}" in caps[k]
        assert f"a bad photo of a {name}." in caps[k]  # an OpenAI CLIP template
        assert abs(sum(caption_weights(k)) - 1) < 1e-9
