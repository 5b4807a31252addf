"""A study cell — one (generator, CFG, strategy) — as every service names, parses and keys it.

The scorer, trainer and analyzer each need the same small value: built from a CLI string
(`<generator>/<cfg>/<strategy>`) or a `synscale.v1.CellId`, turned back into a CellId, and
named in keys (`ids.cell_path`) and reports (`ids.cell_name`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from synscale import ids
from synscale.errors import InvalidInput


@dataclass(frozen=True, order=True)
class Cell:  # ordered: reports list cells by (generator, cfg, strategy)
    generator: str
    cfg: float
    strategy: str

    @property
    def name(self) -> str:
        """The label reports and tables use: `gen|cfg=2|strategy`."""
        return ids.cell_name(self.generator, self.cfg, self.strategy)

    @property
    def path(self) -> str:
        """The key prefix of the cell's objects: `gen/cfg2/strategy`."""
        return ids.cell_path(self.generator, self.cfg, self.strategy)

    @classmethod
    def parse(cls, text: str, field: str = "cell") -> Cell:
        """`<generator>/<cfg>/<strategy>`, cfg as `2`, `7.5` or `cfg7.5`; errors name `field`."""
        parts = text.strip().split("/")
        if len(parts) != 3 or not all(parts):
            raise InvalidInput(field, f"expected <generator>/<cfg>/<strategy>, got {text!r}")
        try:
            cfg = float(parts[1].removeprefix("cfg"))
        except ValueError:
            raise InvalidInput(field, f"cfg {parts[1]!r} is not a number (in {text!r})") from None
        return cls(parts[0], cfg, parts[2])

    @classmethod
    def of(cls, cell: Any) -> Cell:
        """From a synscale.v1 CellId, as events carry it."""
        return cls(cell.generator, float(cell.cfg), cell.strategy)

    @classmethod
    def requested(cls, cell: Any) -> Cell:
        """From a CellId a caller sent: generator and strategy must be set."""
        if not cell.generator or not cell.strategy:
            raise InvalidInput("cell", "generator and strategy are required")
        return cls.of(cell)

    def proto(self) -> Any:
        from synscale.v1 import common_pb2

        return common_pb2.CellId(generator=self.generator, cfg=self.cfg, strategy=self.strategy)

    def __str__(self) -> str:
        return f"{self.generator}/{ids.format_cfg(self.cfg)}/{self.strategy}"
