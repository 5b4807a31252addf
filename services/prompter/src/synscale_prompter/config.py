"""Prompter settings from the environment (12-factor, like every synscale service)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from synscale.errors import InvalidInput


def _positive(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name, "")
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput(name, f"must be an integer, got {raw!r}") from None
    if value <= 0:
        raise InvalidInput(name, f"must be positive, got {value}")
    return value


@dataclass(frozen=True)
class PrompterConfig:
    shard_size: int = 64  # images per GenerationJob (= per shard)
    max_n: int = 100_000  # BuildPrompts: prompts per class
    max_total: int = 200_000  # BuildPrompts: prompts per response (gRPC message size)
    captions_per_class: int = 20  # in_captions: real images captioned per class

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> PrompterConfig:
        e = dict(os.environ if env is None else env)
        return cls(
            shard_size=_positive(e, "SYNSCALE_SHARD_SIZE", cls.shard_size),
            max_n=_positive(e, "SYNSCALE_PROMPTER_MAX_N", cls.max_n),
            max_total=_positive(e, "SYNSCALE_PROMPTER_MAX_TOTAL", cls.max_total),
            captions_per_class=_positive(e, "SYNSCALE_CAPTIONS_PER_CLASS", cls.captions_per_class),
        )
