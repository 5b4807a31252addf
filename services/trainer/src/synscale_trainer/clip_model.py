"""CLIP models from open_clip JSON configs, the contrastive loss and zero-shot heads.

`embedded-clip` is this package's own config (model_configs/embedded-clip.json, a ViT with
4x4 patches on 32x32 images and a 2-layer text transformer, ~3.5M parameters, most of
them the token embedding): small enough to train on a CPU and the embedded default. Any
open_clip model name (e.g. ViT-B-16) builds the real architecture, randomly initialised.
The tokenizer is open_clip's SimpleTokenizer, whose BPE vocabulary ships inside the
open_clip package, so nothing is fetched from a hub.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import torch
from torch import nn

from synscale.errors import InvalidInput
from synscale_trainer.transforms import CLIP_MEAN, CLIP_STD, Preprocess

EMBEDDED_CLIP = "embedded-clip"
CAPTION_TEMPLATE = "a photo of a {}."


@cache
def register_configs() -> None:
    """Make the package's JSON configs known to open_clip (idempotent)."""
    import open_clip

    with resources.as_file(resources.files("synscale_trainer").joinpath("model_configs")) as path:
        open_clip.add_model_config(path)


def model_config(name: str) -> dict[str, Any]:
    import open_clip

    register_configs()
    cfg = open_clip.get_model_config(name)
    if cfg is None:
        raise InvalidInput(
            "arch",
            f"unknown CLIP model {name!r}; use {EMBEDDED_CLIP} or an open_clip config name such as ViT-B-16",
        )
    if "hf_tokenizer_name" in cfg.get("text_cfg", {}) or "hf_model_name" in cfg.get("text_cfg", {}):
        raise InvalidInput(
            "arch", f"CLIP model {name!r} needs a Hugging Face tokenizer/text tower (hub access)"
        )
    return dict(cfg)


@dataclass(frozen=True)
class ClipInfo:
    name: str
    image_size: int

    def preprocess(self, image_size: int = 0, *, augment: bool = False) -> Preprocess:
        size = image_size or self.image_size
        style = "small" if size <= 64 else "imagenet"
        mean, std = ((0.5,) * 3, (0.5,) * 3) if style == "small" else (CLIP_MEAN, CLIP_STD)
        return Preprocess(size, 3, mean, std, style, augment)


def clip_info(name: str) -> ClipInfo:
    cfg = model_config(name)
    size = cfg["vision_cfg"].get("image_size", 224)
    return ClipInfo(name, int(size if isinstance(size, int) else size[0]))


def build_clip(name: str, image_size: int = 0) -> nn.Module:
    import open_clip

    register_configs()
    model_config(name)
    kwargs: dict[str, Any] = {"force_image_size": image_size} if image_size else {}
    return open_clip.create_model(name, pretrained=None, **kwargs)


def tokenizer(name: str) -> Callable[[Sequence[str]], torch.Tensor]:
    import open_clip

    register_configs()
    return open_clip.get_tokenizer(name)  # type: ignore[no-any-return]


def templates() -> list[Callable[[str], str]]:
    """The 80 prompt templates of OpenAI's ImageNet zero-shot evaluation."""
    from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES

    return list(OPENAI_IMAGENET_TEMPLATES)


def caption(class_name: str) -> str:
    """Caption of a real image that carries only its label."""
    return CAPTION_TEMPLATE.format(class_name)


def contrastive_loss(model: nn.Module, images: torch.Tensor, texts: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE over the batch (open_clip's ClipLoss, single process)."""
    from open_clip.loss import ClipLoss

    image_features, text_features, logit_scale = _forward(model, images, texts)
    return ClipLoss()(image_features, text_features, logit_scale)  # type: ignore[no-any-return]


def _forward(model: nn.Module, images: torch.Tensor, texts: torch.Tensor) -> tuple[torch.Tensor, ...]:
    out = model(images, texts)
    if isinstance(out, dict):
        return out["image_features"], out["text_features"], out["logit_scale"]
    return out[0], out[1], out[2]


@torch.no_grad()
def zero_shot_head(
    model: nn.Module,
    name: str,
    class_names: Sequence[str],
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """(embed_dim, C) class embeddings: mean of the normalised 80-template text embeddings."""
    from open_clip import build_zero_shot_classifier

    model.eval()
    return build_zero_shot_classifier(
        model,
        tokenizer=tokenizer(name),
        classnames=list(class_names),
        templates=templates(),
        num_classes_per_batch=10,
        device=device,
        use_tqdm=False,
    )


class ZeroShotClassifier(nn.Module):
    """Image -> class logits (logit_scale * cosine similarity to the template embeddings)."""

    def __init__(self, model: nn.Module, head: torch.Tensor) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("head", head)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = self.model.encode_image(images, normalize=True)  # type: ignore[operator]
        scale = self.model.logit_scale.exp()  # type: ignore[union-attr,operator]
        return scale * features @ self.head.to(features.dtype)  # type: ignore[operator]
