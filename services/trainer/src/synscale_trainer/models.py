"""Supervised classifier architectures, by name.

The embedded models are sized for 32x32 greyscale on a CPU; the ImageNet models are the
paper's (torchvision ResNet-50 and ViT-B/16, randomly initialised: no pretrained weights
exist offline and the study trains from scratch anyway). `timm/<name>` builds any timm
model. Each entry also fixes the input format the data pipeline must produce.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from synscale.errors import InvalidInput
from synscale_trainer.transforms import IMAGENET_MEAN, IMAGENET_STD, Preprocess


@dataclass(frozen=True)
class ArchInfo:
    channels: int
    image_size: int
    style: str  # transforms style: small | imagenet
    build: Callable[[int, int], nn.Module]  # (num_classes, image_size) -> model

    def preprocess(self, image_size: int = 0, *, augment: bool = False) -> Preprocess:
        mean, std = ((0.5,), (0.5,)) if self.channels == 1 else (IMAGENET_MEAN, IMAGENET_STD)
        return Preprocess(image_size or self.image_size, self.channels, mean, std, self.style, augment)


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


class EmbeddedCNN(nn.Module):
    """Three conv-BN-ReLU-pool stages (32/64/128) and a linear head: ~0.1M parameters.

    Small enough to train at hundreds of images per second on two CPU cores, which is
    what a laptop scaling study at a dozen sizes needs; ~90% on Fashion-MNIST.
    """

    def __init__(
        self, num_classes: int, in_channels: int = 1, widths: tuple[int, ...] = (32, 64, 128)
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = in_channels
        for w in widths:
            layers += [_block(cin, w), nn.MaxPool2d(2)]
            cin = w
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(self.features(x), 1), 1))


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.short: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.short(x))


class EmbeddedResNet(nn.Module):
    """A CIFAR-style ResNet (one basic block per stage, widths 32/64/128): ResNet-8."""

    def __init__(
        self, num_classes: int, in_channels: int = 1, widths: tuple[int, ...] = (32, 64, 128)
    ) -> None:
        super().__init__()
        self.stem = _block(in_channels, widths[0])
        stages: list[nn.Module] = []
        cin = widths[0]
        for i, w in enumerate(widths):
            stages.append(BasicBlock(cin, w, 1 if i == 0 else 2))
            cin = w
        self.stages = nn.Sequential(*stages)
        self.head = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(self.stages(self.stem(x)), 1), 1))


def _resnet50(num_classes: int, image_size: int) -> nn.Module:
    from torchvision.models import resnet50

    return resnet50(weights=None, num_classes=num_classes)


def _vit_b_16(num_classes: int, image_size: int) -> nn.Module:
    from torchvision.models import vit_b_16

    if image_size % 16:
        raise InvalidInput("image_size", f"vit_b_16 needs a multiple of 16, got {image_size}")
    return vit_b_16(weights=None, num_classes=num_classes, image_size=image_size)


def _timm(name: str) -> Callable[[int, int], nn.Module]:
    def build(num_classes: int, image_size: int) -> nn.Module:
        import timm

        kwargs: dict[str, Any] = {"img_size": image_size} if "vit" in name or "deit" in name else {}
        return timm.create_model(name, pretrained=False, num_classes=num_classes, **kwargs)

    return build


ARCHS: dict[str, ArchInfo] = {
    "embedded-cnn": ArchInfo(1, 32, "small", lambda c, s: EmbeddedCNN(c)),
    "embedded-resnet": ArchInfo(1, 32, "small", lambda c, s: EmbeddedResNet(c)),
    "resnet50": ArchInfo(3, 224, "imagenet", _resnet50),
    "vit_b_16": ArchInfo(3, 224, "imagenet", _vit_b_16),
}


def arch_info(arch: str) -> ArchInfo:
    """The entry for `arch`; 'timm/<model>' for any timm model. Raises InvalidInput('arch')."""
    if arch in ARCHS:
        return ARCHS[arch]
    if arch.startswith("timm/"):
        import timm

        name = arch.removeprefix("timm/")
        if not timm.is_model(name):
            raise InvalidInput("arch", f"timm has no model {name!r}")
        return ArchInfo(3, 224, "imagenet", _timm(name))
    raise InvalidInput(
        "arch", f"unknown supervised architecture {arch!r}; known: {', '.join(ARCHS)}, timm/<model>"
    )


def build_classifier(arch: str, num_classes: int, image_size: int = 0) -> nn.Module:
    info = arch_info(arch)
    return info.build(num_classes, image_size or info.image_size)
