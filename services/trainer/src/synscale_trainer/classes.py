"""The label space a run trains and evaluates in.

A run's classes decide three things at once: which class folders of a synthetic cell are
read, which integer each image is labelled with, and which names CLIP's zero-shot head is
built from. Fashion-MNIST uses the shared dataset's order; ImageNet uses the standard
sorted-WordNet-id order (the order of torchvision ImageFolder and of every published
checkpoint), with names from open_clip's zero-shot metadata.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources

from synscale.datasets import fashion_mnist
from synscale.errors import InvalidInput
from synscale.ids import safe_component

CLASS_SETS = ("fashion-mnist", "imagenet")


@dataclass(frozen=True)
class ClassSet:
    name: str
    ids: tuple[str, ...]
    names: tuple[str, ...]
    full_ids: tuple[str, ...] = ()  # the whole set when this one is restricted (study classes.ids)

    def __post_init__(self) -> None:
        if not self.full_ids:
            object.__setattr__(self, "full_ids", self.ids)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def restricted(self) -> bool:
        return self.ids != self.full_ids

    def restrict(self, ids: list[str] | tuple[str, ...]) -> ClassSet:
        """The classes `ids` of this set, labelled 0..k-1 in the order given."""
        if not ids:
            return self
        unknown = [i for i in ids if i not in self.id_to_index]
        if unknown:
            raise InvalidInput("class_ids", f"not classes of {self.name}: {unknown[:8]}")
        if len(set(ids)) != len(ids):
            raise InvalidInput("class_ids", "class ids must be distinct")
        index = self.id_to_index
        return ClassSet(self.name, tuple(ids), tuple(self.names[index[i]] for i in ids), self.full_ids)

    @property
    def folder_to_index(self) -> dict[str, int]:
        """Class folder name under a cell prefix (ids.safe_component(id)) -> label."""
        return {safe_component(cid): i for i, cid in enumerate(self.ids)}

    @property
    def id_to_index(self) -> dict[str, int]:
        return {cid: i for i, cid in enumerate(self.ids)}


def _timm_lines(name: str) -> tuple[str, ...]:
    text = resources.files("timm.data").joinpath("_info", name).read_text()
    return tuple(line.strip() for line in text.splitlines() if line.strip())


@cache
def fashion() -> ClassSet:
    return ClassSet("fashion-mnist", fashion_mnist.CLASS_IDS, fashion_mnist.CLASS_NAMES)


@cache
def imagenet() -> ClassSet:
    from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES

    wnids = _timm_lines("imagenet_synsets.txt")
    if len(wnids) != 1000 or list(wnids) != sorted(wnids):
        raise RuntimeError("timm's imagenet_synsets.txt is not the sorted 1000-class list")
    return ClassSet("imagenet", wnids, tuple(IMAGENET_CLASSNAMES))


@cache
def imagenet_subset(which: str) -> frozenset[str]:
    """The 200 WordNet ids of ImageNet-A ('a') or ImageNet-R ('r'), from timm's metadata."""
    if which not in {"a", "r"}:
        raise ValueError(f"ImageNet subset must be 'a' or 'r', got {which!r}")
    return frozenset(_timm_lines(f"imagenet_{which}_synsets.txt"))


def get(name: str) -> ClassSet:
    if name == "fashion-mnist":
        return fashion()
    if name == "imagenet":
        return imagenet()
    raise InvalidInput("class_set", f"unknown class set {name!r}; known: {', '.join(CLASS_SETS)}")


def infer(
    class_set: str,
    eval_sets: list[str] | tuple[str, ...],
    real_path: str,
    class_ids: list[str] | tuple[str, ...] = (),
) -> ClassSet:
    """The explicit class set, else ImageNet when any eval set or real path says so;
    restricted to `class_ids` when given."""
    if class_set:
        base = get(class_set)
    elif real_path or any(s.startswith("imagenet") for s in eval_sets):
        base = imagenet()
    else:
        base = fashion()
    return base.restrict(list(class_ids))
