"""Chance is a floor (docs/statistics.md): is a series ever significantly better than guessing?

A classifier that guesses among C classes errs with probability 1 − 1/C. At each size the
errors of all runs (seeds pooled: k of n test images) are tested one-sided against that rate
with an exact binomial test, Bonferroni-corrected over the sizes so that a series truly at
chance is flagged with at least 95% probability however many sizes it has. A series not
significantly below chance at any size is "at chance": its slope is the slope of noise, and
the findings never read it as scaling.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from scipy import stats

LEVEL = 0.05


@dataclass(frozen=True)
class ChanceCheck:
    classes: int
    chance_error: float  # 1 − 1/classes
    p_values: tuple[float, ...]  # one-sided, per size, before the correction
    sizes: tuple[int, ...]

    @property
    def below(self) -> tuple[int, ...]:
        """Sizes where the error is significantly below chance (Bonferroni over sizes)."""
        m = max(len(self.p_values), 1)
        return tuple(s for s, p in zip(self.sizes, self.p_values, strict=True) if p * m < LEVEL)

    @property
    def at_chance(self) -> bool:
        return bool(self.sizes) and not self.below

    def to_dict(self) -> dict[str, Any]:
        return {"classes": self.classes, "chance_error": self.chance_error, "at_chance": self.at_chance,
                "sizes_below_chance": list(self.below),
                "p_values": [float(f"{p:.4g}") for p in self.p_values]}


def check(points: Sequence[tuple[int, float, int]], classes: int) -> ChanceCheck | None:
    """`points`: (size, error rate, test images) per run. None without counts or classes."""
    if classes < 2 or not points or any(n <= 0 for _, _, n in points):
        return None
    chance = 1.0 - 1.0 / classes
    by_size: dict[int, list[tuple[float, int]]] = {}
    for size, err, n in points:
        by_size.setdefault(size, []).append((err, n))
    sizes = tuple(sorted(by_size))
    p_values = []
    for s in sizes:
        k = round(sum(e * n for e, n in by_size[s]))
        n = sum(n for _, n in by_size[s])
        p_values.append(float(stats.binom.cdf(k, n, chance)))
    return ChanceCheck(classes, chance, tuple(p_values), sizes)
