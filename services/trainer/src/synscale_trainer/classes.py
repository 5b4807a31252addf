"""The label space a run trains and evaluates in, from its job.

A run's classes decide three things at once: which class folders of a synthetic cell are
read, which integer each image is labelled with, and which names CLIP's zero-shot head is
built from. Class sets and their one label order live in the domain core
(`synscale.classes`); a job from the analyzer carries its classes (ids and names, in label
order) so a custom list needs no guessing. Jobs written by hand (`synscale train`) name a
built-in set, or leave it to be inferred from their eval sets.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from importlib import resources
from typing import Any

from synscale import classes as core
from synscale.classes import ClassSet
from synscale.errors import InvalidInput

__all__ = ["ClassSet", "for_job", "imagenet_subset", "infer"]


def _timm_lines(name: str) -> tuple[str, ...]:
    text = resources.files("timm.data").joinpath("_info", name).read_text()
    return tuple(line.strip() for line in text.splitlines() if line.strip())


@cache
def imagenet_subset(which: str) -> frozenset[str]:
    """The 200 WordNet ids of ImageNet-A ('a') or ImageNet-R ('r'), from timm's metadata."""
    if which not in {"a", "r"}:
        raise ValueError(f"ImageNet subset must be 'a' or 'r', got {which!r}")
    return frozenset(_timm_lines(f"imagenet_{which}_synsets.txt"))


def infer(
    class_set: str,
    eval_sets: Sequence[str],
    real_path: str,
    class_ids: Sequence[str] = (),
) -> ClassSet:
    """The explicit built-in set, else ImageNet when any eval set or real path says so;
    restricted to `class_ids` when given (labels in the set's order)."""
    if class_set and class_set not in core.BUILTIN:
        raise InvalidInput("class_set", f"class set {class_set!r} needs the job's classes "
                                        f"(built-in sets: {', '.join(core.BUILTIN_SETS)})")
    if class_set:
        base = core.BUILTIN[class_set]()
    elif real_path or any(s.startswith("imagenet") for s in eval_sets):
        base = core.imagenet()
    else:
        base = core.fashion_mnist()
    return base.select(list(class_ids))


def for_job(job: Any) -> ClassSet:
    """The classes of a synscale.v1.TrainingJob: the ones it carries, else inferred."""
    if len(job.classes):
        return core.from_infos(job.class_set, job.classes)
    return infer(job.class_set, list(job.eval_sets), job.real_path, list(job.class_ids))
