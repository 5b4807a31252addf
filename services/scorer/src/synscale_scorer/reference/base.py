"""The one interface every reference classifier offers the metrics.

A reference maps uint8 images (N, C, H, W) to logits over its own label space (named by
class ids) and a penultimate feature vector. Recognizability restricts the logits to the
study's classes; diversity uses the features. The metrics never know which backend ran.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import torch

from synscale.errors import PreconditionFailed


@runtime_checkable
class Reference(Protocol):
    name: str
    class_ids: tuple[str, ...]
    feature_dim: int

    def __call__(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits (N, len(class_ids)), features (N, feature_dim)) for uint8 (N, C, H, W)."""
        ...


def default_device() -> torch.device:
    """synscale.settings.pick_device: SYNSCALE_DEVICE, else CUDA when present, else CPU."""
    from synscale.settings import pick_device

    return torch.device(pick_device(torch.cuda.is_available))


def columns_for(reference: Reference, class_ids: Sequence[str]) -> list[int]:
    """Reference logit column of each study class; a class it cannot name is an error."""
    index = {cid: i for i, cid in enumerate(reference.class_ids)}
    missing = [cid for cid in class_ids if cid not in index]
    if missing:
        raise PreconditionFailed(
            f"reference {reference.name} has no class {', '.join(missing[:5])}"
            f"{' …' if len(missing) > 5 else ''}; its classes are e.g. {', '.join(reference.class_ids[:5])}"
        )
    return [index[cid] for cid in class_ids]


def to_grey(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 3, H, W) → float (N, 1, H, W) with PIL's ITU-R 601 luma weights."""
    w = torch.tensor([0.299, 0.587, 0.114], dtype=torch.float32).view(1, 3, 1, 1)
    return (images.float() * w).sum(1, keepdim=True)


def to_unit_range(images: torch.Tensor, channels: int, size: int | None) -> torch.Tensor:
    """uint8 (N, C, H, W) → float in [0, 1] with `channels` channels, resized to `size`."""
    x = to_grey(images) if channels == 1 and images.shape[1] == 3 else images.float()
    if channels == 3 and x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    x = x / 255.0
    if size is not None and tuple(x.shape[-2:]) != (size, size):
        x = torch.nn.functional.interpolate(
            x, size=(size, size), mode="bilinear", align_corners=False, antialias=True
        )
    return x.contiguous()
