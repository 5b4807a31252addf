"""Reference classifiers: the committed embedded CNN, training determinism, and ImageNet
backends (torchvision, timm, open_clip) built small with random weights from local files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from synscale.datasets import fashion_mnist
from synscale.errors import PreconditionFailed
from synscale_scorer.reference import imagenet
from synscale_scorer.reference.base import columns_for
from synscale_scorer.reference.embedded import load_embedded, weights_path
from synscale_scorer.reference.fashion import EmbeddedReference
from synscale_scorer.reference.train import TrainConfig, train_reference


def test_committed_reference_is_accurate_on_real_test_images() -> None:
    ref = EmbeddedReference()  # verifies the .sha256 beside the weights
    test = fashion_mnist.load("test")
    images = torch.from_numpy(np.ascontiguousarray(test.images[:1000]))[:, None]
    logits, feats = ref(images)
    accuracy = float((logits.argmax(1).numpy() == test.labels[:1000]).mean())
    assert accuracy >= 0.9
    assert feats.shape == (1000, 128)
    card = json.loads(weights_path().with_name("fashion_mnist_cnn.json").read_text())
    assert card["report"]["test_accuracy"] >= 0.9 and card["config"]["seed"] == 0


def test_corrupted_weights_are_refused(tmp_path: Path) -> None:
    bad = tmp_path / "w.safetensors"
    bad.write_bytes(weights_path().read_bytes()[:-1] + b"\x00")
    (tmp_path / "w.safetensors.sha256").write_text(weights_path().with_name(
        weights_path().name + ".sha256").read_text())
    with pytest.raises(PreconditionFailed, match="sha256"):
        load_embedded(bad)


def test_training_is_deterministic_from_the_seed(tmp_path: Path) -> None:
    cfg = TrainConfig(seed=3, epochs=1, limit=256, threads=1)
    a = train_reference(tmp_path / "a" / "w.safetensors", cfg)
    b = train_reference(tmp_path / "b" / "w.safetensors", cfg)
    c = train_reference(tmp_path / "c" / "w.safetensors", TrainConfig(seed=4, epochs=1, limit=256, threads=1))
    assert a.sha256 == b.sha256 != c.sha256
    assert (tmp_path / "a" / "w.safetensors.sha256").read_text().split()[0] == a.sha256


def test_embedded_reference_accepts_rgb_of_other_sizes() -> None:
    ref = EmbeddedReference()
    grey = torch.from_numpy(np.ascontiguousarray(fashion_mnist.load("test").images[:4]))[:, None]
    rgb = torch.nn.functional.interpolate(grey.float(), size=64, mode="nearest").expand(-1, 3, -1, -1)
    a, _ = ref(grey)
    b, _ = ref(rgb.round().to(torch.uint8))
    assert (a.argmax(1) == b.argmax(1)).float().mean() >= 0.75


def test_torchvision_reference_from_local_weights(tmp_path: Path) -> None:
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.get_model("resnet18", weights=None, num_classes=3).eval()
    path = tmp_path / "resnet18.pth"
    torch.save({"state_dict": model.state_dict()}, path)
    ref = imagenet.torchvision_reference("resnet18", path, class_ids=("a", "b", "c"), input_size=64)
    images = torch.randint(0, 256, (2, 3, 48, 48), dtype=torch.uint8)
    logits, feats = ref(images)
    assert logits.shape == (2, 3) and feats.shape == (2, 512)
    with torch.no_grad():
        x = torch.nn.functional.interpolate(images.float() / 255, size=64, mode="bilinear",
                                            align_corners=False, antialias=True)
        expected = model((x - ref.mean) / ref.std)
    assert torch.allclose(logits, expected, atol=1e-5)
    assert columns_for(ref, ["c", "a"]) == [2, 0]
    with pytest.raises(PreconditionFailed, match="no class"):
        columns_for(ref, ["zebra"])


def test_timm_reference_uses_the_imagenet_label_space(tmp_path: Path) -> None:
    import timm
    from safetensors.torch import save_file

    model = timm.create_model("test_resnet", pretrained=False, num_classes=1000)
    path = tmp_path / "test_resnet.safetensors"
    save_file(model.state_dict(), str(path))
    ref = imagenet.timm_reference("test_resnet", path)
    assert len(ref.class_ids) == 1000 and ref.class_ids[0] == "n01440764"
    logits, feats = ref(torch.randint(0, 256, (2, 3, 40, 40), dtype=torch.uint8))
    assert logits.shape == (2, 1000) and feats.shape == (2, ref.feature_dim)


def test_open_clip_zero_shot_from_a_local_checkpoint(tmp_path: Path) -> None:
    import open_clip

    config = {"embed_dim": 32,
              "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 8},
              "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}
    cfg_path = tmp_path / "scorer-test-clip.json"
    cfg_path.write_text(json.dumps(config))
    open_clip.add_model_config(cfg_path)
    model = open_clip.create_model("scorer-test-clip")
    ckpt = tmp_path / "clip.pt"
    torch.save(model.state_dict(), ckpt)
    ref = imagenet.open_clip_reference("scorer-test-clip", ckpt, ["tshirt", "bag"], ["T-shirt", "bag"],
                                       templates=["a photo of a {}."], config=cfg_path)
    logits, feats = ref(torch.randint(0, 256, (3, 1, 32, 32), dtype=torch.uint8))
    assert logits.shape == (3, 2) and feats.shape == (3, 32)
    assert torch.allclose(feats.norm(dim=1), torch.ones(3), atol=1e-5)
    with pytest.raises(PreconditionFailed):
        imagenet.open_clip_reference("scorer-test-clip", tmp_path / "missing.pt", ["a"], ["a"])
