"""Image preprocessing and augmentation with explicit, per-image seeds.

Augmentation randomness comes from a seed derived from (run seed, epoch, image id), not
from the global torch RNG: the same image in the same epoch gets the same crop whether a
run is fresh or resumed from a checkpoint, and whichever loader worker decodes it.
Two styles: "small" (28-32 px: pad-and-crop + flip, as for CIFAR/MNIST-sized data) and
"imagenet" (random-resized-crop + flip for training; resize + centre crop for eval).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

BILINEAR = Image.Resampling.BILINEAR
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
EVAL_CROP_RATIO = 0.875  # resize to size/0.875 then centre-crop, the ImageNet convention


@dataclass(frozen=True)
class Preprocess:
    """uint8 image (HxW grey or HxWx3) -> normalised float tensor (C, S, S)."""

    image_size: int
    channels: int  # 1 (grey) or 3 (RGB)
    mean: tuple[float, ...]
    std: tuple[float, ...]
    style: str = "small"  # small | imagenet
    augment: bool = False

    def __post_init__(self) -> None:
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {self.channels}")
        if self.style not in ("small", "imagenet"):
            raise ValueError(f"style must be 'small' or 'imagenet', got {self.style!r}")

    def with_augment(self, augment: bool) -> Preprocess:
        return Preprocess(self.image_size, self.channels, self.mean, self.std, self.style, augment)

    def __call__(self, image: np.ndarray | Image.Image, seed: int = 0) -> torch.Tensor:
        pil = self._convert(image)
        rng = np.random.default_rng(seed) if self.augment else None
        pil = self._imagenet(pil, rng) if self.style == "imagenet" else self._small(pil, rng)
        arr = np.asarray(pil, dtype=np.uint8)
        return self._normalise(torch.from_numpy(arr.copy()))

    def batch(self, images: np.ndarray) -> torch.Tensor:
        """Fast path for eval on in-memory uint8 arrays already at the model's size."""
        if self.augment or images.ndim != 3 or images.shape[1:] != (self.image_size, self.image_size):
            return torch.stack([self(img) for img in images])
        t = torch.from_numpy(np.array(images, dtype=np.uint8)).unsqueeze(1)  # a writable copy: N,1,H,W
        if self.channels == 3:
            t = t.expand(-1, 3, -1, -1)
        return self._scale(t)

    # -- internals ---------------------------------------------------------------
    def _convert(self, image: np.ndarray | Image.Image) -> Image.Image:
        pil = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image))
        mode = "L" if self.channels == 1 else "RGB"
        return pil if pil.mode == mode else pil.convert(mode)

    def _small(self, pil: Image.Image, rng: np.random.Generator | None) -> Image.Image:
        size = self.image_size
        if pil.size != (size, size):
            pil = pil.resize((size, size), BILINEAR)
        if rng is None:
            return pil
        pad = max(1, size // 16)
        arr = np.asarray(pil)
        widths = ((pad, pad), (pad, pad)) + (((0, 0),) if arr.ndim == 3 else ())
        padded = np.pad(arr, widths)
        y, x = (int(v) for v in rng.integers(0, 2 * pad + 1, size=2))
        crop = padded[y : y + size, x : x + size]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        return Image.fromarray(np.ascontiguousarray(crop))

    def _imagenet(self, pil: Image.Image, rng: np.random.Generator | None) -> Image.Image:
        size = self.image_size
        if rng is None:
            short = round(size / EVAL_CROP_RATIO)
            w, h = pil.size
            scale = short / min(w, h)
            pil = pil.resize((max(size, round(w * scale)), max(size, round(h * scale))), BILINEAR)
            w, h = pil.size
            left, top = (w - size) // 2, (h - size) // 2
            return pil.crop((left, top, left + size, top + size))
        left, top, cw, ch = random_resized_crop_box(pil.size, rng)
        pil = pil.resize((size, size), BILINEAR, box=(left, top, left + cw, top + ch))
        if rng.random() < 0.5:
            pil = pil.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return pil

    def _normalise(self, arr: torch.Tensor) -> torch.Tensor:
        t = arr.unsqueeze(0) if arr.ndim == 2 else arr.permute(2, 0, 1)
        return self._scale(t)

    def _scale(self, t: torch.Tensor) -> torch.Tensor:
        mean = torch.tensor(self.mean, dtype=torch.float32).view(-1, 1, 1)
        std = torch.tensor(self.std, dtype=torch.float32).view(-1, 1, 1)
        return (t.float() / 255.0 - mean) / std


def random_resized_crop_box(
    size: tuple[int, int],
    rng: np.random.Generator,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
) -> tuple[int, int, int, int]:
    """(left, top, width, height) of a random-resized crop, torchvision's algorithm."""
    width, height = size
    area = width * height
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(*log_ratio))
        w = round(math.sqrt(target * aspect))
        h = round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            top = int(rng.integers(0, height - h + 1))
            left = int(rng.integers(0, width - w + 1))
            return left, top, w, h
    in_ratio = width / height
    if in_ratio < ratio[0]:
        w, h = width, round(width / ratio[0])
    elif in_ratio > ratio[1]:
        w, h = round(height * ratio[1]), height
    else:
        w, h = width, height
    return (width - w) // 2, (height - h) // 2, w, h
