"""Sample grids (classes × CFG) of a T2I backend, for reports and eyeballing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from PIL import Image

from synscale.errors import InvalidInput

from ..output import tile_grid


class _Backend(Protocol):
    def generate(
        self, prompts: list[str], seeds: list[int], cfg: float, steps: int, negative_prompt: str = ""
    ) -> list[Image.Image]: ...


def sample_grid(
    backend: _Backend,
    class_names: Sequence[str],
    cfgs: Sequence[float],
    per_class: int,
    seed: int,
    steps: int = 25,
    scale: int = 2,
    label_width: int = 80,
) -> Image.Image:
    """Rows = classes, columns grouped by CFG (`per_class` images per group), labelled.

    The same seeds are used in every CFG group, so moving across groups shows what
    guidance does to one initial noise. Prompts are the class names as given.
    """
    if not class_names:
        raise InvalidInput("class_names", "need at least one class")
    if not cfgs:
        raise InvalidInput("cfgs", "need at least one CFG value")
    if per_class < 1:
        raise InvalidInput("per_class", f"must be at least 1, got {per_class}")
    prompts = [name for name in class_names for _ in range(per_class)]
    seeds = [seed + i for i in range(len(prompts))]
    groups = [backend.generate(prompts, seeds, float(cfg), steps) for cfg in cfgs]
    rows = [[im for group in groups for im in group[r * per_class:(r + 1) * per_class]]
            for r in range(len(class_names))]
    return tile_grid(rows, scale=scale, block=per_class, row_labels=list(class_names),
                     block_labels=[f"CFG {cfg:g}" for cfg in cfgs], label_width=label_width)
