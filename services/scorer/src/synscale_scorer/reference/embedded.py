"""The embedded reference classifier: a small 3-conv CNN for 32x32 greyscale Fashion-MNIST.

Input convention: float tensors (N, 1, 32, 32) with values in [0, 1] (uint8 / 255). The
network normalises internally ((x - 0.5) / 0.5), so callers never need to know constants.
It returns logits and the 128-d penultimate features (after ReLU) used for diversity.
"""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path

import torch
from torch import nn

FEATURE_DIM = 128
NUM_CLASSES = 10
WEIGHTS_NAME = "fashion_mnist_cnn.safetensors"


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )


class FashionCNN(nn.Module):
    """conv(32)→conv(64)→conv(128), each BN+ReLU+maxpool, then FC 2048→128→10.

    About 0.36M parameters (1.4 MB as float32): small enough to commit, fast enough to
    label tens of thousands of images per minute on a CPU.
    """

    feature_dim = FEATURE_DIM

    def __init__(self, num_classes: int = NUM_CLASSES, dropout: float = 0.3) -> None:
        super().__init__()
        self.convs = nn.Sequential(_block(1, 32), _block(32, 64), _block(64, 128))
        self.embed = nn.Sequential(nn.Flatten(), nn.Linear(128 * 4 * 4, FEATURE_DIM), nn.ReLU())
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(FEATURE_DIM, num_classes)

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits, features) for images in [0, 1], shape (N, 1, 32, 32)."""
        feats = self.embed(self.convs((x - 0.5) / 0.5))
        return self.head(self.dropout(feats)), feats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)[0]


def weights_path() -> Path:
    """The committed weights file inside the package."""
    return Path(str(resources.files("synscale_scorer") / "weights" / WEIGHTS_NAME))


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_embedded(path: Path | None = None, verify: bool = True) -> FashionCNN:
    """The committed (or given) reference CNN in eval mode; verifies the .sha256 beside it."""
    from safetensors.torch import load_file

    from synscale.errors import PreconditionFailed

    path = path or weights_path()
    if not path.exists():
        raise PreconditionFailed(
            f"reference weights {path} missing; run `synscale embedded train-reference`"
        )
    checksum = path.with_name(path.name + ".sha256")
    if verify and checksum.exists():
        expected = checksum.read_text().split()[0]
        actual = file_sha256(path)
        if actual != expected:
            raise PreconditionFailed(f"reference weights {path}: sha256 {actual} != {expected}")
    model = FashionCNN()
    model.load_state_dict(load_file(str(path)))
    return model.eval()
