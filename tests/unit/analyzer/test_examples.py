"""The example studies parse, and `make demo`'s study is the grid the analyzer issue asks for."""

from __future__ import annotations

from pathlib import Path

import pytest

from synscale.plan import cells_of, plan_runs
from synscale.study import parse_study

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_every_example_is_a_valid_study(path: Path) -> None:
    spec = parse_study(path.read_text(), str(path))
    assert plan_runs(spec, "synscale")


@pytest.mark.parametrize("name", ["demo.yaml", "demo-full.yaml"])
def test_demo_grid(name: str) -> None:
    """>= 3 CFG values (the CFG claims need them), >= 2 strategies (the prompt claim compares them;
    demo-full has >= 3), >= 4 sizes, a real baseline, ID and OOD evaluation, >= 2 seeds and
    >= 500 test images per class on every set (issue 12)."""
    spec = parse_study((EXAMPLES / name).read_text(), name)
    assert spec.classes.set == "fashion-mnist" and spec.generators[0].backend == "embedded"
    assert len(spec.generators[0].cfg) >= 3 and len(spec.strategies) >= (3 if "full" in name else 2)
    assert "classname" in spec.strategies
    assert all(len(t.seeds) >= 2 for t in spec.training)
    limit = spec.evaluation.limit
    if limit:  # a strided subset: count its smallest class on the real test labels
        import numpy as np

        from synscale.datasets import fashion_mnist

        labels = fashion_mnist.load("test").labels
        idx = np.linspace(0, len(labels) - 1, limit).round().astype(np.int64)
        assert np.bincount(labels[idx]).min() >= 500
    assert len(spec.images_per_class) >= 4 and len(spec.real.per_class) >= 4
    assert spec.evaluation.id and spec.evaluation.ood
    runs = plan_runs(spec, "synscale")
    assert len(cells_of(spec)) == len(spec.generators[0].cfg) * len(spec.strategies)
    assert {r.job.real_per_class for r in runs if not r.job.cells} >= set(spec.real.per_class)
