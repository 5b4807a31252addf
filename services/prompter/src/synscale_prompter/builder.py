"""The prompter's domain API: prompts for (class set, strategy, index range, namespace).

The gRPC servicer, the Kafka worker and the CLI are thin adapters over these functions.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from synscale.v1 import prompter_pb2
from synscale_prompter.classes import ClassDef, ClassSet, enrich
from synscale_prompter.strategies import Strategy, StrategyOptions, make_strategy


def prepare_strategy(name: str, class_set: ClassSet, options: StrategyOptions | None = None,
                     field: str = "strategy") -> Strategy:
    """The strategy, checked against the class set (e.g. every class has a gloss)."""
    base = options or StrategyOptions()
    if not base.class_set:
        base = replace(base, class_set=class_set.name)
    strategy = make_strategy(name, base, field)
    strategy.check(class_set)
    return strategy


def class_prompts(strategy: Strategy, cls: ClassDef, start: int, count: int,
                  namespace: str) -> list[prompter_pb2.Prompt]:
    """Prompts of images [start, start + count) of one class."""
    texts = strategy.prompts(cls, start, count, namespace)
    return [prompter_pb2.Prompt(class_id=cls.id, strategy=strategy.name, index=start + i, text=t)
            for i, t in enumerate(texts)]


def build_prompts(strategy: Strategy, classes: Iterable[ClassDef], start: int, count: int,
                  namespace: str) -> list[prompter_pb2.Prompt]:
    """Prompts for every class, class by class."""
    out: list[prompter_pb2.Prompt] = []
    for cls in classes:
        out += class_prompts(strategy, cls, start, count, namespace)
    return out


def cli_prompts(class_set: ClassSet, strategy: str, n: int, namespace: str,
                ) -> list[tuple[ClassDef, list[str]]]:
    """Images 0..n-1 of each class: the `synscale.prompt_builders` entry point that
    `synscale generate` finds when the prompter is installed (no import between services)."""
    classes = enrich(class_set)
    strat = prepare_strategy(strategy, classes, field="--strategy")
    return [(c, [p.text for p in class_prompts(strat, c, 0, n, namespace)]) for c in classes]
