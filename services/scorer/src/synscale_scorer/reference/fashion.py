"""The embedded reference (Fashion-MNIST CNN) behind the common Reference interface."""

from __future__ import annotations

from pathlib import Path

import torch

from synscale.datasets import fashion_mnist
from synscale_scorer.reference.base import default_device, to_unit_range
from synscale_scorer.reference.embedded import FashionCNN, load_embedded


class EmbeddedReference:
    """Labels 32x32 greyscale images over the 10 Fashion-MNIST classes.

    RGB input is converted to luma and other sizes are resized, so the reference can also
    judge images from a diffusers backend prompted with Fashion-MNIST classes.
    """

    name = "embedded-fashion-cnn"
    class_ids = fashion_mnist.CLASS_IDS

    def __init__(self, model: FashionCNN | None = None, weights: Path | None = None,
                 device: torch.device | str | None = None) -> None:
        self.device = torch.device(device) if device is not None else default_device()
        self.model = (model or load_embedded(weights)).eval().to(self.device)
        self.feature_dim = self.model.feature_dim

    def __call__(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.inference_mode():
            x = to_unit_range(images.to(self.device), channels=1, size=fashion_mnist.IMAGE_SIZE)
            logits, feats = self.model.forward_features(x)
        return logits.cpu(), feats.cpu()
