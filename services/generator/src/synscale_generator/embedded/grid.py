"""Sample grids (classes × CFG) of a T2I backend, for reports and eyeballing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from PIL import Image, ImageDraw

from synscale.errors import InvalidInput


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
    cell_w, cell_h = (s * scale for s in groups[0][0].size)
    pad, gap, header = 2, 8, 14
    group_w = per_class * (cell_w + pad)
    width = label_width + len(cfgs) * group_w + (len(cfgs) - 1) * gap
    height = header + len(class_names) * (cell_h + pad)
    grid = Image.new("L", (width, height), color=255)
    draw = ImageDraw.Draw(grid)
    for g, (cfg, images) in enumerate(zip(cfgs, groups, strict=True)):
        x0 = label_width + g * (group_w + gap)
        draw.text((x0, 1), f"CFG {cfg:g}", fill=0)
        for k, image in enumerate(images):
            row, col = divmod(k, per_class)
            cell = image.convert("L").resize((cell_w, cell_h), Image.Resampling.NEAREST)
            grid.paste(cell, (x0 + col * (cell_w + pad), header + row * (cell_h + pad)))
    for row, name in enumerate(class_names):
        draw.text((2, header + row * (cell_h + pad) + cell_h // 2 - 5), name[:13], fill=0)
    return grid
