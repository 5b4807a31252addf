"""synscale trainer: supervised and CLIP training at growing N, ID and OOD evaluation.

`run_training(job, store, progress=, cancel=)` is the entry point the embedded runner,
the Kafka worker, the gRPC servicer and the CLI share (see docs/trainer.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from synscale_trainer.train import TrainOptions, run_training

__all__ = ["TrainOptions", "run_training"]


def __getattr__(name: str) -> Any:  # lazy: importing the package must not import torch
    if name in __all__:
        from synscale_trainer import train

        return getattr(train, name)
    raise AttributeError(name)
