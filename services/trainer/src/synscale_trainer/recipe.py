"""A training recipe made concrete: training length, optimizer and learning-rate schedule.

The rule for training length is what makes runs at different N comparable in a scaling
study, so it is one small pure function (documented in docs/trainer.md):

    steps = clamp(ceil(epochs * images / batch_size), min_steps, max_steps)

A fixed number of epochs means small sets are seen as often as large ones; the floor
keeps the smallest sets from being under-trained (a few hundred images would otherwise
get a handful of steps), the ceiling bounds the cost of the largest.
"""

from __future__ import annotations

import math

import torch
from pydantic import ValidationError

from synscale.errors import InvalidInput
from synscale.study import TrainingRecipe

WARMUP_FRACTION = 0.05
MAX_WARMUP_STEPS = 2000
CLIP_DEFAULT_LR = 1e-3


def parse_recipe(recipe_json: str, *, kind: str, arch: str) -> TrainingRecipe:
    """The job's recipe, or the default recipe for its kind and architecture."""
    if not recipe_json.strip():
        if kind == "clip":  # contrastive training diverges at the supervised default lr
            return TrainingRecipe(name=arch, kind="clip", arch=arch, lr=CLIP_DEFAULT_LR, weight_decay=0.1)
        return TrainingRecipe(name=arch or "default", kind="supervised", arch=arch or "embedded-cnn")
    try:
        return TrainingRecipe.model_validate_json(recipe_json)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in exc.errors()
        )
        raise InvalidInput("recipe_json", problems) from None


def total_steps(recipe: TrainingRecipe, n_images: int) -> int:
    """Training length for a set of `n_images` images (the written rule above)."""
    if n_images <= 0:
        raise InvalidInput("n_per_class", "the training set is empty")
    if recipe.min_steps > recipe.max_steps:
        raise InvalidInput(
            "recipe_json.min_steps", f"{recipe.min_steps} exceeds max_steps {recipe.max_steps}"
        )
    wanted = math.ceil(recipe.epochs * n_images / recipe.batch_size)
    return int(min(recipe.max_steps, max(recipe.min_steps, wanted)))


def warmup_steps(steps: int) -> int:
    return int(min(MAX_WARMUP_STEPS, max(1, round(WARMUP_FRACTION * steps))))


def lr_factor(step: int, steps: int) -> float:
    """Linear warm-up over the first 5% of steps, then cosine decay to zero."""
    warm = warmup_steps(steps)
    if step < warm:
        return (step + 1) / warm
    progress = (step - warm) / max(1, steps - warm)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def make_optimizer(model: torch.nn.Module, recipe: TrainingRecipe, *, clip: bool) -> torch.optim.Optimizer:
    """AdamW; no weight decay on biases, norms, embeddings' scalars (1-d parameters).

    CLIP uses the betas/eps of the CLIP paper (0.9, 0.98, 1e-6), which keep the
    contrastive loss stable at large logit scales.
    """
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for _, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim <= 1 else decay).append(p)
    groups = [
        {"params": decay, "weight_decay": recipe.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    betas = (0.9, 0.98) if clip else (0.9, 0.999)
    eps = 1e-6 if clip else 1e-8
    return torch.optim.AdamW(groups, lr=recipe.lr, betas=betas, eps=eps)


def make_schedule(optimizer: torch.optim.Optimizer, steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, steps))
