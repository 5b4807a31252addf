"""Prompt strategies behind one interface, looked up by name (see base.REGISTRY).

Importing this package registers all six; none imports torch until a model-backed
strategy actually runs its model.
"""

from synscale_prompter.strategies import captions, simple, word2sen
from synscale_prompter.strategies.base import (
    REGISTRY,
    Strategy,
    StrategyOptions,
    draw,
    make_strategy,
    namespace_for,
    strategy_names,
)

__all__ = [
    "REGISTRY", "Strategy", "StrategyOptions", "captions", "draw", "make_strategy",
    "namespace_for", "simple", "strategy_names", "word2sen",
]
