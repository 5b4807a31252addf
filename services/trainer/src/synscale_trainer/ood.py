"""The embedded OOD suite: named, seeded distribution shifts of the Fashion-MNIST test set.

In the spirit of MNIST-C (Mu & Gilmer 2019) and ImageNet-R/-Sketch: each shift keeps the
object and its label but changes how it is rendered, at a severity fixed so that the
real-trained reference CNN (93% on the clean test set) keeps **40–75%** accuracy (it keeps
0.50–0.72; table in docs/trainer.md). A set at chance (the old `inverted` and `noise`)
cannot show whether one training set scales better out of distribution than another; a
set near 93% is not a shift. The
severities come from `bench/ood_calibration.py` (its table is in docs/trainer.md) and are
constants here, so a set is the same images on every machine and in every study.

Every transform maps (images uint8 (n, 32, 32), their test-set indices) to shifted images.
Each random choice comes from a generator seeded by (OOD_SEED, the shift's number, the
test index), so an image's shift depends on its index alone: a strided subset
(`evaluation.limit`) holds exactly the images the full set holds at those indices.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np
from PIL import Image
from scipy import ndimage

BILINEAR = Image.Resampling.BILINEAR
OOD_SEED = 12

# Calibrated severities (bench/ood_calibration.py; reference accuracy in docs/trainer.md).
ROTATION_DEG = 20.0
SCALE = 0.6
TRANSLATION_PX = 4
BLUR_SIGMA = 1.1
CONTRAST = 0.45
ELASTIC_ALPHA = 4.0
ELASTIC_SIGMA = 1.0
SKETCH_FILL = 0.0

Transform = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _rng(shift: int, index: int) -> np.random.Generator:
    return np.random.default_rng((OOD_SEED, shift, int(index)))


def rotation(images: np.ndarray, indices: np.ndarray, degrees: float = ROTATION_DEG) -> np.ndarray:
    """Rotated by ±`degrees` (sign drawn per image), bilinear, black fill."""
    out = np.empty_like(images)
    for i, (img, index) in enumerate(zip(images, indices, strict=True)):
        sign = 1.0 if _rng(1, index).random() < 0.5 else -1.0
        out[i] = np.asarray(Image.fromarray(img).rotate(sign * degrees, resample=BILINEAR, fillcolor=0))
    return out


def scale(images: np.ndarray, indices: np.ndarray, factor: float = SCALE) -> np.ndarray:
    """Shrunk by `factor` (bilinear, antialiased) and centred on the black canvas."""
    h, w = images.shape[1:]
    size = max(1, round(h * factor))
    out = np.zeros_like(images)
    top, left = (h - size) // 2, (w - size) // 2
    for i, img in enumerate(images):
        small = np.asarray(Image.fromarray(img).resize((size, size), BILINEAR))
        out[i, top : top + size, left : left + size] = small
    return out


_DIRECTIONS = np.array([(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)])


def translation(images: np.ndarray, indices: np.ndarray, pixels: int = TRANSLATION_PX) -> np.ndarray:
    """Moved `pixels` in one of the 8 compass directions (drawn per image); black fill."""
    out = np.zeros_like(images)
    h, w = images.shape[1:]
    for i, (img, index) in enumerate(zip(images, indices, strict=True)):
        dy, dx = _DIRECTIONS[_rng(3, index).integers(len(_DIRECTIONS))] * pixels
        src = img[max(0, -dy) : h - max(0, dy), max(0, -dx) : w - max(0, dx)]
        out[i, max(0, dy) : max(0, dy) + src.shape[0], max(0, dx) : max(0, dx) + src.shape[1]] = src
    return out


def blur(images: np.ndarray, indices: np.ndarray, sigma: float = BLUR_SIGMA) -> np.ndarray:
    """Gaussian blur of standard deviation `sigma` pixels (defocus)."""
    x = ndimage.gaussian_filter(images.astype(np.float32), sigma=(0, sigma, sigma), mode="constant")
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


def contrast(images: np.ndarray, indices: np.ndarray, factor: float = CONTRAST) -> np.ndarray:
    """Contrast reduced about each image's mean: (x − mean)·factor + mean (ImageNet-C)."""
    x = images.astype(np.float32)
    mean = x.mean(axis=(1, 2), keepdims=True)
    return np.clip(np.round((x - mean) * factor + mean), 0, 255).astype(np.uint8)


def elastic(
    images: np.ndarray, indices: np.ndarray, alpha: float = ELASTIC_ALPHA, sigma: float = ELASTIC_SIGMA
) -> np.ndarray:
    """Elastic deformation (Simard et al. 2003): a per-image random displacement field,
    smoothed with a Gaussian of `sigma` pixels and scaled to `alpha` pixels; bilinear."""
    h, w = images.shape[1:]
    grid_y, grid_x = np.meshgrid(
        np.arange(h, dtype=np.float32), np.arange(w, dtype=np.float32), indexing="ij"
    )
    out = np.empty_like(images)
    for i, (img, index) in enumerate(zip(images, indices, strict=True)):
        field = _rng(6, index).uniform(-1, 1, size=(2, h, w)).astype(np.float32)
        field = ndimage.gaussian_filter(field, sigma=(0, sigma, sigma), mode="constant")
        field *= alpha / max(1e-6, float(np.abs(field).max()))
        coords = np.stack([grid_y + field[0], grid_x + field[1]])
        warped = ndimage.map_coordinates(img.astype(np.float32), coords, order=1, mode="constant")
        out[i] = np.clip(np.round(warped), 0, 255).astype(np.uint8)
    return out


def edges(images: np.ndarray) -> np.ndarray:
    """Sobel edge magnitude scaled to 0..255 per image (float32).

    Image by image: `ndimage.sobel` on the (n, H, W) stack would also smooth across the
    stack's first axis and mix each image with its neighbours (the first `sketch` did,
    so its images depended on which others were in the batch).
    """
    x = images.astype(np.float32)
    mag = np.stack([np.hypot(ndimage.sobel(im, axis=0), ndimage.sobel(im, axis=1)) for im in x])
    peak = mag.reshape(len(mag), -1).max(axis=1).reshape(-1, 1, 1)
    return np.where(peak > 0, 255.0 * mag / np.maximum(peak, 1e-6), 0.0).astype(np.float32)


def edge_sketch(images: np.ndarray, indices: np.ndarray, fill: float = SKETCH_FILL) -> np.ndarray:
    """An edge-map sketch (ImageNet-Sketch's rendition shift): the Sobel outline at full
    strength, over the object's own shading dimmed to `fill`. The calibrated default is the
    outline alone (fill 0), already the hardest member of the family (docs/trainer.md)."""
    out = np.maximum(edges(images), fill * images.astype(np.float32))
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


SHIFTS: dict[str, Transform] = {
    "rotation": rotation,
    "scale": scale,
    "translation": translation,
    "blur": blur,
    "contrast": contrast,
    "elastic": elastic,
    "edge-sketch": edge_sketch,
}
"""The default suite, in its documented order."""



def severity(name: str) -> dict[str, float]:
    """The shift's parameters as they stand now (read at call time, not bound at import).

    The evaluation cache keys on these and `evalsets.fashion_set` passes them to the
    transform, so a changed severity can never be served a set built at the old one.
    """
    params: dict[str, dict[str, float]] = {
        "rotation": {"degrees": ROTATION_DEG},
        "scale": {"factor": SCALE},
        "translation": {"pixels": TRANSLATION_PX},
        "blur": {"sigma": BLUR_SIGMA},
        "contrast": {"factor": CONTRAST},
        "elastic": {"alpha": ELASTIC_ALPHA, "sigma": ELASTIC_SIGMA},
        "edge-sketch": {"fill": SKETCH_FILL},
    }
    return params[name]


SEVERITY: dict[str, tuple[str, Callable[[float], Transform]]] = {
    "rotation": ("degrees", lambda v: partial(rotation, degrees=v)),
    "scale": ("factor", lambda v: partial(scale, factor=v)),
    "translation": ("pixels", lambda v: partial(translation, pixels=int(v))),
    "blur": ("sigma", lambda v: partial(blur, sigma=v)),
    "contrast": ("factor", lambda v: partial(contrast, factor=v)),
    "elastic": ("alpha", lambda v: partial(elastic, alpha=v)),
    "edge-sketch": ("fill", lambda v: partial(edge_sketch, fill=v)),
}
"""Each shift at another severity: what the calibration sweeps (parameter name, factory)."""
