"""Prompter settings from the environment (12-factor, like every synscale service)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from synscale.config import env_int


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
            shard_size=env_int(e, "SYNSCALE_SHARD_SIZE", cls.shard_size, minimum=1),
            max_n=env_int(e, "SYNSCALE_PROMPTER_MAX_N", cls.max_n, minimum=1),
            max_total=env_int(e, "SYNSCALE_PROMPTER_MAX_TOTAL", cls.max_total, minimum=1),
            captions_per_class=env_int(e, "SYNSCALE_CAPTIONS_PER_CLASS", cls.captions_per_class, minimum=1),
        )
