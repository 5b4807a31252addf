"""The terminal summary: the slope table must show every cell label whole in 80 columns."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console

from synscale_analyzer.cli import print_summary


def _row(label: str, alpha: float, max_n: int = 64) -> dict[str, Any]:
    return {"label": label, "eval_set": "test", "form": "power_law", "alpha": alpha, "alpha_lo": alpha - 0.1,
            "alpha_hi": alpha + 0.1, "value_at_max_n": 0.4, "max_n": max_n, "holdout_rel_error": 0.05}


def _render(doc: dict[str, Any]) -> str:
    console = Console(width=80, record=True, file=io.StringIO())
    print_summary(doc, console)
    return console.export_text()


def test_one_generator_is_named_once_and_labels_stay_whole() -> None:
    labels = [f"embedded|cfg={c}|classname_description" for c in (1, 2, 4)]
    off_set = {**_row("embedded|cfg=9|other", 0.9), "eval_set": "ood"}
    doc = {"id_set": "test", "findings": ["synthetic scales less"],
           "slopes": [_row("real", 0.28), *[_row(x, 0.01 * i) for i, x in enumerate(labels)], off_set]}
    text = _render(doc)
    assert "cells of generator embedded" in text and "err @ N=64" in text
    for label in labels:
        assert label.split("|", 1)[1] in text  # whole, on one line
    assert "cfg=9" not in text  # only the ID set's rows
    assert "• synthetic scales less" in text


def test_several_generators_keep_full_labels_and_per_row_sizes() -> None:
    doc = {"id_set": "test", "findings": [],
           "slopes": [_row("sd|cfg=2|classname", 0.1, 32), _row("amused|cfg=2|classname", 0.2, 64)]}
    text = _render(doc)
    assert "sd|cfg=2|classname" in text and "amused|cfg=2|classname" in text
    assert "0.400 @ 32" in text and "0.400 @ 64" in text and "cells of generator" not in text


def test_the_claims_table_comes_first_with_a_verdict_per_claim() -> None:
    claims = [{"claim": f"k{i}", "paper": f"paper says {i}", "this_study": f"numbers {i}", "test": "t",
               "verdict": v, "p": 0.01} for i, v in enumerate(("reproduced", "contradicted", "inconclusive"))]
    doc = {"id_set": "test", "findings": ["a finding"], "claims": claims, "slopes": [_row("real", 0.28)]}
    text = _render(doc)
    assert text.index("What the paper claims, and what this study shows") < text.index("Scaling ability")
    for c in claims:
        assert c["paper"] in text and c["this_study"] in text and c["verdict"] in text
