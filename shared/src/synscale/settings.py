"""Settings from the environment: one set of readers, one error type, one device picker.

Services are configured by environment variables only (12-factor). Every service's
settings object (PrompterConfig, ScoringOptions, TrainOptions, the generator's limits, the
runner's ServiceSettings) reads them through `Env`, so a bad value is always a
`SettingsError` naming the variable — the runner exits with its bad-configuration status
instead of failing later (docs/architecture.md §2).

The device: `SYNSCALE_DEVICE` (cpu, cuda, cuda:1, ...) for every service, else CUDA when the
service's torch sees a GPU. The domain core does not import torch, so the GPU services
pass their `torch.cuda.is_available`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping

from synscale.errors import InvalidInput

DEVICE_ENV = "SYNSCALE_DEVICE"
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})
_DEVICE_RE = re.compile(r"^(cpu|cuda|mps|xpu)(:\d+)?$")


def flag_word(raw: str) -> bool | None:
    """True/False for a boolean word (1/true/yes/on, 0/false/no/off), None for anything else."""
    word = raw.strip().lower()
    return True if word in TRUE_WORDS else False if word in FALSE_WORDS else None


class SettingsError(InvalidInput):
    """An environment variable holds a value the service cannot use; names the variable."""


class Env:
    """Typed readers over the environment (or a mapping, in tests): unset or empty gives the
    default; a value that does not parse is a SettingsError."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self.env: dict[str, str] = dict(os.environ if env is None else env)

    def __contains__(self, name: str) -> bool:
        return bool(self.env.get(name, "").strip())

    def text(self, name: str, default: str = "") -> str:
        raw = self.env.get(name, "").strip()
        return raw or default

    def integer(self, name: str, default: int, minimum: int | None = None) -> int:
        raw = self.env.get(name, "").strip()
        if not raw:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise SettingsError(name, f"must be an integer, got {raw!r}") from None
        if minimum is not None and value < minimum:
            raise SettingsError(name, f"must be >= {minimum}, got {value}")
        return value

    def number(self, name: str, default: float, minimum: float | None = None) -> float:
        raw = self.env.get(name, "").strip()
        if not raw:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise SettingsError(name, f"must be a number, got {raw!r}") from None
        if value != value or (minimum is not None and value < minimum):
            raise SettingsError(name, f"must be a number >= {minimum}, got {raw!r}")
        return value

    def flag(self, name: str, default: bool) -> bool:
        raw = self.env.get(name, "").strip()
        value = flag_word(raw) if raw else default
        if value is None:
            raise SettingsError(name, f"must be true or false, got {raw!r}")
        return value

    def device(self) -> str:
        """SYNSCALE_DEVICE, checked; "" when unset (the caller picks)."""
        raw = self.env.get(DEVICE_ENV, "").strip()
        if raw and not _DEVICE_RE.match(raw):
            raise SettingsError(DEVICE_ENV, f"must be cpu, cuda, cuda:<n>, mps or xpu; got {raw!r}")
        return raw


def pick_device(cuda_available: Callable[[], bool], env: Mapping[str, str] | None = None) -> str:
    """The one device rule: SYNSCALE_DEVICE when set, else cuda when available, else cpu."""
    forced = Env(env).device()
    if forced:
        return forced
    return "cuda" if cuda_available() else "cpu"
