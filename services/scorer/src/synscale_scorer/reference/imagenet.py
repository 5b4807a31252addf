"""ImageNet references from local files: torchvision/timm classifiers and zero-shot open_clip.

No hub is reached: architectures are built from their code with random weights and the
user's local checkpoint is loaded into them. The label space of a supervised ImageNet
classifier is the standard 1000 WordNet ids in sorted order (torchvision ImageFolder
order, timm's `imagenet_synsets.txt`), the order every published checkpoint uses.

Preprocessing: images are resized (bilinear, antialiased) straight to the model's input
size — synthetic images are square, so no crop — and normalised with the model's mean/std
(ImageNet's for torchvision, the pretrained config's for timm and open_clip).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from torch import nn

from synscale.errors import InvalidInput, PreconditionFailed
from synscale_scorer.reference.base import default_device, to_unit_range

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@cache
def imagenet_wnids() -> tuple[str, ...]:
    text = resources.files("timm.data").joinpath("_info", "imagenet_synsets.txt").read_text()
    wnids = tuple(line.strip() for line in text.splitlines() if line.strip())
    if len(wnids) != 1000 or list(wnids) != sorted(wnids):
        raise PreconditionFailed("timm's imagenet_synsets.txt is not the sorted 1000-class list")
    return wnids


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from .safetensors or a torch file (tensors only; `state_dict`/`model` unwrapped)."""
    if not path.is_file():
        raise PreconditionFailed(f"reference weights {path} do not exist")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    obj: Any = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model", "module"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
    if not isinstance(obj, dict):
        raise PreconditionFailed(f"{path} holds no state dict")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def _last_linear(model: nn.Module) -> nn.Linear:
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise PreconditionFailed(f"{type(model).__name__} has no final nn.Linear classifier")
    return linears[-1]


class ClassifierReference:
    """A supervised classifier; features are the input of its final Linear layer."""

    def __init__(
        self, name: str, model: nn.Module, class_ids: Sequence[str], input_size: int,
        mean: Sequence[float], std: Sequence[float],
    ) -> None:
        self.name = name
        self.device = default_device()
        self.model = model.eval().to(self.device)
        self.class_ids = tuple(class_ids)
        self.input_size = input_size
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1).to(self.device)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1).to(self.device)
        head = _last_linear(model)
        self.feature_dim = head.in_features
        if head.out_features != len(self.class_ids):
            raise PreconditionFailed(
                f"{name}: classifier has {head.out_features} outputs but the label space has "
                f"{len(self.class_ids)} classes"
            )
        self._captured: list[torch.Tensor] = []
        head.register_forward_hook(lambda _m, inp, _out: self._captured.append(inp[0]))

    def __call__(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = (to_unit_range(images.to(self.device), channels=3, size=self.input_size) - self.mean) / self.std
        with torch.inference_mode():
            self._captured.clear()
            logits = self.model(x)
            feats = self._captured[-1].flatten(1)
            self._captured.clear()
        return logits.cpu(), feats.cpu()


def torchvision_reference(arch: str, weights: Path | None, class_ids: Sequence[str] | None = None,
                          input_size: int = 224) -> ClassifierReference:
    """A torchvision classifier (`resnet50`, `vit_b_16`, ...) with weights from a local file."""
    import torchvision

    if arch not in torchvision.models.list_models(module=torchvision.models):
        raise InvalidInput("reference.arch", f"unknown torchvision classifier {arch!r}")
    labels = tuple(class_ids) if class_ids is not None else imagenet_wnids()
    model = torchvision.models.get_model(arch, weights=None, num_classes=len(labels))
    if weights is not None:
        model.load_state_dict(load_state_dict(weights))
    return ClassifierReference(f"torchvision:{arch}", model, labels, input_size, IMAGENET_MEAN, IMAGENET_STD)


def timm_reference(arch: str, weights: Path | None, class_ids: Sequence[str] | None = None,
                   **model_kwargs: Any) -> ClassifierReference:
    """A timm classifier with weights from a local file (never `pretrained=True`)."""
    import timm

    labels = tuple(class_ids) if class_ids is not None else imagenet_wnids()
    try:
        model = timm.create_model(arch, pretrained=False, num_classes=len(labels), **model_kwargs)
    except RuntimeError as exc:
        raise InvalidInput("reference.arch", f"timm cannot build {arch!r}: {exc}") from None
    if weights is not None:
        model.load_state_dict(load_state_dict(weights))
    cfg = timm.data.resolve_data_config({}, model=model)
    size = int(cfg["input_size"][-1])
    return ClassifierReference(f"timm:{arch}", model, labels, size, cfg["mean"], cfg["std"])


class OpenClipReference:
    """Zero-shot CLIP: logits are scaled cosine similarities to per-class text embeddings
    (averaged over prompt templates); features are the normalised image embeddings."""

    def __init__(self, name: str, model: Any, tokenizer: Any, class_ids: Sequence[str],
                 class_names: Sequence[str], templates: Sequence[str] | None = None) -> None:
        import open_clip
        from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES

        if len(class_ids) != len(class_names):
            raise InvalidInput("class_names", "needs one name per class id")
        self.name = name
        self.device = default_device()
        self.model = model.eval().to(self.device)
        self.class_ids = tuple(class_ids)
        visual: Any = model.visual
        size = visual.image_size
        self.input_size = int(size[0] if isinstance(size, tuple | list) else size)
        mean = getattr(visual, "image_mean", None) or open_clip.OPENAI_DATASET_MEAN
        std = getattr(visual, "image_std", None) or open_clip.OPENAI_DATASET_STD
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1).to(self.device)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1).to(self.device)
        chosen = list(templates) if templates is not None else list(OPENAI_IMAGENET_TEMPLATES)
        with torch.inference_mode():
            self.classifier = open_clip.build_zero_shot_classifier(
                model, tokenizer, list(class_names), chosen, num_classes_per_batch=10, device=self.device
            )
        self.feature_dim = int(self.classifier.shape[0])

    def __call__(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = (to_unit_range(images.to(self.device), channels=3, size=self.input_size) - self.mean) / self.std
        with torch.inference_mode():
            emb = self.model.encode_image(x).float()
            emb = emb / emb.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        return (100.0 * emb @ self.classifier.float()).cpu(), emb.cpu()


def open_clip_reference(model_name: str, checkpoint: Path | None, class_ids: Sequence[str],
                        class_names: Sequence[str], templates: Sequence[str] | None = None,
                        config: Path | None = None) -> OpenClipReference:
    """open_clip from a local checkpoint; `config` registers a model config JSON first."""
    import open_clip

    if config is not None:
        open_clip.add_model_config(config)
    if checkpoint is not None and not checkpoint.is_file():
        raise PreconditionFailed(f"open_clip checkpoint {checkpoint} does not exist")
    try:
        model = open_clip.create_model(model_name, pretrained=str(checkpoint) if checkpoint else None)
    except RuntimeError as exc:
        raise InvalidInput("reference.model", f"open_clip cannot build {model_name!r}: {exc}") from None
    tokenizer = open_clip.get_tokenizer(model_name)
    return OpenClipReference(f"open_clip:{model_name}", model, tokenizer, class_ids, class_names, templates)
