"""The strategy interface, the registry and the per-image draw.

A strategy turns (class, image index) into a prompt. Everything random is derived from
a digest of (namespace, strategy, class id, index) -- never from global RNG state --
so the i-th image of a cell gets the same prompt whichever worker builds it, in
whatever order. The namespace is the study id in the pipeline (or "seed-<n>" for ad
hoc calls), so every generator and CFG value of a study sees the same prompts and
cells differ only by what the study varies.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from synscale.errors import InvalidInput
from synscale.ids import digest
from synscale.study import STRATEGIES as STUDY_STRATEGIES
from synscale_prompter.classes import ClassDef, ClassSet


def draw(namespace: str, strategy: str, class_id: str, index: int, n: int) -> int:
    """A uniform choice in [0, n) for one image, a pure function of its inputs."""
    if n <= 0:
        raise ValueError("draw needs n > 0")
    return int(digest("prompt", namespace, strategy, class_id, int(index), length=15), 16) % n


def namespace_for(study_id: str = "", seed: int = 0) -> str:
    """The draw namespace: the study id when there is one, else the seed."""
    return study_id or f"seed-{int(seed)}"


@dataclass(frozen=True)
class StrategyOptions:
    """Settings the model-backed strategies need; the simple ones ignore them.

    `sentence_generator`, `captioner` and `image_source` replace the transformers
    model / the real-image reader (tests inject them; the rest of the code path is the
    real one). `cache` is an ObjectStore for model outputs (None: the local cache dir).
    """

    class_set: str = ""
    word2sen_model: str = ""
    word2sen_k: int = 20
    captioner_model: str = ""
    captions_per_class: int = 20
    real_path: str = ""
    cache: Any = None
    sentence_generator: Any = None
    captioner: Any = None
    image_source: Any = None


class Strategy(ABC):
    """Builds the prompt of one image of one class."""

    name: ClassVar[str]
    description: ClassVar[str]
    needs_model: ClassVar[bool] = False

    def __init__(self, options: StrategyOptions | None = None) -> None:
        self.options = options or StrategyOptions()

    def check(self, class_set: ClassSet) -> None:  # noqa: B027 - most strategies serve any set
        """Raise InvalidInput (naming the class) when this strategy cannot serve the set."""

    @abstractmethod
    def prompt(self, cls: ClassDef, index: int, namespace: str) -> str:
        """The prompt of image `index` of class `cls`."""

    def prompts(self, cls: ClassDef, start: int, count: int, namespace: str) -> list[str]:
        return [self.prompt(cls, i, namespace) for i in range(start, start + count)]


def require_field(class_set: ClassSet, field: str, strategy: str) -> None:
    """Every class must carry `field` (description / hypernym) for this strategy."""
    for c in class_set:
        if not getattr(c, field):
            raise InvalidInput(
                f"classes[{c.index}].{field}",
                f"class {c.id!r} ({c.name}) has no {field} (no WordNet synset and none given); "
                f"strategy {strategy!r} needs one")


REGISTRY: dict[str, type[Strategy]] = {}


def register(cls: type[Strategy]) -> type[Strategy]:
    if cls.name in REGISTRY:
        raise ValueError(f"strategy {cls.name!r} registered twice")
    REGISTRY[cls.name] = cls
    return cls


def strategy_names() -> list[str]:
    """Registered names, in the order the study file lists them (synscale.study.STRATEGIES)."""
    order = {name: i for i, name in enumerate(STUDY_STRATEGIES)}
    return sorted(REGISTRY, key=lambda name: (order.get(name, len(order)), name))


def make_strategy(name: str, options: StrategyOptions | None = None,
                  field: str = "strategy") -> Strategy:
    if name not in REGISTRY:
        raise InvalidInput(field, f"unknown strategy {name!r}; known: {', '.join(strategy_names())}")
    return REGISTRY[name](options)


def pick(items: Sequence[str], namespace: str, strategy: str, cls: ClassDef, index: int) -> str:
    return items[draw(namespace, strategy, cls.id, index, len(items))]


