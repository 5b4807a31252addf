"""Training of the embedded T2I model: it learns, is deterministic and resumes exactly."""

from __future__ import annotations

import itertools
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


def test_a_second_stage_starts_from_a_weights_file(tmp_path: Path, data, captions) -> None:
    first = _trainer(tmp_path / "a", data, captions)
    first.export(tmp_path / WEIGHTS_NAME, first.run(max_steps=3, progress=False), command="stage 1")
    from synscale_generator.embedded.weights import sha256_of

    sha = sha256_of(tmp_path / WEIGHTS_NAME)
    stage2 = TrainConfig(**{**CONFIG.__dict__, "init_from": str(tmp_path / WEIGHTS_NAME), "init_sha256": sha,
                            "decay_steps": 6, "ema_decay": 0.9})
    second = _trainer(tmp_path / "b", data, captions, stage2)
    loaded = load_weights(tmp_path / WEIGHTS_NAME)
    for key, value in loaded.unet.state_dict().items():
        assert torch.equal(second.unet.state_dict()[key], value), key
        assert torch.equal(second.ema.state_dict()[key], value), key
    assert second.init_info["steps"] == 3
    fp = stage2.fingerprint()
    assert fp["init_sha256"] == sha and "init_from" not in fp and fp["decay_steps"] == 6
    second.export(tmp_path / "b" / WEIGHTS_NAME, second.run(max_steps=2, progress=False), command="stage 2")
    info = load_weights(tmp_path / "b" / WEIGHTS_NAME).info
    assert info["init"]["sha256"] == sha and info["init"]["info"]["steps"] == 3
    assert f"--init-from {WEIGHTS_NAME}" in info["reproduce"] and "--decay-steps 6" in info["reproduce"]

    wrong = TrainConfig(**{**stage2.__dict__, "init_sha256": "0" * 64})
    with pytest.raises(ValueError, match="sha256"):
        _trainer(tmp_path / "c", data, captions, wrong)


def test_the_default_fingerprint_is_unchanged_by_the_stage_options() -> None:
    """Checkpoints of the first stage (written before these options existed) still resume."""
    fp = TrainConfig().fingerprint()
    assert not {"decay_steps", "min_snr_gamma", "init_sha256", "init_from", "autocast"} & fp.keys()


def test_cosine_decay_of_the_learning_rate(tmp_path: Path, data, captions) -> None:
    cfg = TrainConfig(**{**CONFIG.__dict__, "decay_steps": 25})
    trainer = _trainer(tmp_path, data, captions, cfg)
    lrs = [trainer._lr(s) for s in range(30)]
    assert lrs[4] == pytest.approx(cfg.lr)  # end of the 5 warm-up steps
    assert all(a >= b for a, b in itertools.pairwise(lrs[4:]))
    assert lrs[25] == pytest.approx(0.0, abs=1e-12) and lrs[29] == pytest.approx(0.0, abs=1e-12)
    assert _trainer(tmp_path / "const", data, captions)._lr(29) == cfg.lr  # the default stays constant


def test_min_snr_weighting(tmp_path: Path, data, captions) -> None:
    cfg = TrainConfig(**{**CONFIG.__dict__, "min_snr_gamma": 5.0})
    trainer = _trainer(tmp_path, data, captions, cfg)
    g = torch.Generator().manual_seed(0)
    pred, target = torch.randn(4, 4, 2, 2, generator=g), torch.randn(4, 4, 2, 2, generator=g)
    alpha = torch.tensor([0.99, 0.9, 0.5, 0.01])  # SNR 99, 9, 1, 0.0101
    loss, mse = trainer._loss(pred, target, alpha)
    per = (pred - target).pow(2).mean(dim=(1, 2, 3))
    weight = torch.tensor([5 / 99, 5 / 9, 1.0, 1.0])
    assert float(loss) == pytest.approx(float((weight * per).mean()), rel=1e-5)
    assert mse == pytest.approx(float(per.mean()), rel=1e-6)  # the logged loss stays the plain MSE
    plain, plain_mse = _trainer(tmp_path / "p", data, captions)._loss(pred, target, alpha)
    assert float(plain) == plain_mse == pytest.approx(float(per.mean()), rel=1e-6)
