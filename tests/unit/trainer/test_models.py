"""Architectures by name: embedded models, ResNet-50 and ViT-B/16 (tiny input), timm, errors."""

from __future__ import annotations

import pytest
import torch

from synscale.errors import InvalidInput
from synscale_trainer.models import arch_info, build_classifier


@pytest.mark.parametrize("arch", ["embedded-cnn", "embedded-resnet"])
def test_embedded_models_take_32px_grey(arch: str) -> None:
    info = arch_info(arch)
    assert (info.channels, info.image_size) == (1, 32)
    model = build_classifier(arch, 10)
    assert model(torch.randn(4, 1, 32, 32)).shape == (4, 10)
    assert sum(p.numel() for p in model.parameters()) < 500_000


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["resnet50", "vit_b_16"])
def test_imagenet_models_build_and_take_one_step_at_small_resolution(arch: str) -> None:
    torch.manual_seed(0)
    model = build_classifier(arch, 1000, image_size=32)
    assert arch_info(arch).channels == 3
    x, y = torch.randn(2, 3, 32, 32), torch.tensor([1, 999])
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    model.train()
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    assert torch.isfinite(loss)
    params = sum(p.numel() for p in model.parameters())
    assert params > 20_000_000  # the real architecture, not a stand-in


def test_timm_models_by_name() -> None:
    model = build_classifier("timm/resnet18", 7, image_size=32)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 7)
    with pytest.raises(InvalidInput, match="timm has no model 'nonet'"):
        arch_info("timm/nonet")


def test_unknown_architecture_names_the_field() -> None:
    with pytest.raises(InvalidInput) as err:
        arch_info("alexnet-9000")
    assert err.value.field == "arch" and "embedded-cnn" in str(err.value)


def test_vit_needs_a_multiple_of_its_patch() -> None:
    with pytest.raises(InvalidInput, match="image_size"):
        build_classifier("vit_b_16", 10, image_size=40)
