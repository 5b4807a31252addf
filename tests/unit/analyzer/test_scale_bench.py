"""bench/scale.py at its smallest size, as a correctness check (not a timing check).

After the restart's rebuild and a run of shard-ready events, the incremental analyzer
state (coverage, totals, ready runs), the scorer's per-event completion and the
trainer's prefix-stopped planning must equal what a full recomputation over the same
store gives (docs/scaling.md, "Bookkeeping growth").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from synscale.testing.modules import load_module

BENCH = Path(__file__).resolve().parents[3] / "bench" / "scale.py"


@pytest.fixture(scope="module")
def bench() -> Any:
    return load_module("scale_bench", BENCH)


@pytest.mark.parametrize("layout", ["issue", "paper"])
def test_incremental_bookkeeping_equals_full_recomputation(bench: Any, layout: str, tmp_path: Path) -> None:
    lay = bench.LAYOUTS[layout]
    if layout == "paper":  # 1000 classes × 16 cells, 2048 runs, but only one shard per class
        lay = bench.Layout("paper", 2, 1000, 4, 2)
    row = bench.measure("fs", lay, 1, tmp_path, events=12, baseline_events=2, check=True)
    assert row["agree"] == dict.fromkeys(row["agree"], True)
    assert set(row["agree"]) >= {"coverage", "images", "ready_runs", "data_ready", "scorer_complete",
                                 "plan_sizes"}
    assert row["shards"] == lay.cells * lay.classes
    assert not any((tmp_path / "scale").iterdir()) if (tmp_path / "scale").exists() else True


def test_the_fit_recovers_a_known_exponent(bench: Any) -> None:
    ns = [1e4, 3e4, 1e5, 3e5, 1e6]
    fit = bench.loglog_fit(ns, [2e-4 * n ** 1.05 * (1 + 0.01 * (-1) ** i) for i, n in enumerate(ns)])
    assert fit is not None and fit["lo"] <= 1.05 <= fit["hi"] and abs(fit["exponent"] - 1.05) < 0.02
    assert bench.loglog_fit(ns[:2], [1.0, 2.0]) is None
