"""Chance is a floor: a series never significantly below 1 − 1/classes is flagged and never read."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from synscale_analyzer import chance
from synscale_analyzer.analysis import analyze, eval_set_slopes, slope_rows
from synscale_analyzer.model import EvalRecord


def test_a_series_truly_at_chance_is_flagged_at_least_95_percent_of_the_time() -> None:
    """Seeded: 400 series guessing among 10 classes (error 0.9) at 5 sizes, 500 test images."""
    rng = np.random.default_rng(1)
    sizes = [4, 8, 16, 32, 64]
    flagged = 0
    for _ in range(400):
        k = rng.binomial(500, 0.9, size=len(sizes))
        c = chance.check([(s, ki / 500, 500) for s, ki in zip(sizes, k, strict=True)], classes=10)
        assert c is not None
        flagged += c.at_chance
    assert flagged >= 380


def test_a_series_clearly_below_chance_at_one_size_is_not_flagged() -> None:
    c = chance.check([(4, 0.90, 500), (8, 0.89, 500), (16, 0.80, 500)], classes=10)
    assert c is not None and not c.at_chance and c.below == (16,)
    assert chance.check([(4, 0.9, 0)], classes=10) is None  # no counts, no test


def _at_chance(inp, eval_set: str, only: str | None = None):  # type: ignore[no-untyped-def]
    """`inp` with `eval_set` at guessing level (error 0.8 ± 1%, 5 classes) for every run, or runs with `only`.

    Errors wander up and down by size, so a fitted slope exists (and could be steep), but no size is
    significantly below chance.
    """
    runs = []
    for i, r in enumerate(inp.runs):
        if only is None or only in r.run_id:
            k = 800 + (-10, 6, -4, 10, -8)[i % 5]
            ev = replace(r.evals[eval_set], top1=1.0 - k / 1000)
            r = replace(r, evals={**r.evals, eval_set: ev})
        runs.append(r)
    return replace(inp, runs=tuple(runs))


def test_chance_series_are_marked_and_no_finding_reads_their_slopes(make_input) -> None:  # type: ignore[no-untyped-def]
    inp = _at_chance(make_input(seeds=(0,), mix=0), "ood-a")
    # One synthetic cell at chance on the ID set too: the toy's best-scaling cell.
    inp = _at_chance(inp, "id", only="syn-4.0-clip_templates")
    a = analyze(inp)
    ood = a.series_for("ood-a")
    assert ood and all(s.at_chance for s in ood)
    flagged_id = [s.key.label for s in a.series_for("id") if s.at_chance]
    assert flagged_id == ["gen|cfg=4|clip_templates"]
    text = "\n".join(a.findings)
    assert "At chance on 'ood-a': 7 of 7 series" in text
    assert "At chance on 'id': 1 of 7 series" in text
    assert "gen|cfg=4|clip_templates" not in text.split("At chance on 'id'")[0]  # not best, worst or lowest
    assert "OOD 'ood-a': every series is at chance" in text
    assert "real α" not in text  # no OOD slope comparison was written
    assert not [c for c in a.comparisons if "ood-a" in c.a and c.family == "OOD vs ID slopes"]
    assert not [c for c in a.family("slopes on id") if "gen|cfg=4|clip_templates" in (c.a, c.b)]
    rows = {(r["label"], r["eval_set"]): r for r in slope_rows(a) if r["form"] == "power_law"}
    assert rows[("gen|cfg=4|clip_templates", "id")]["at_chance"] is True
    assert rows[("real", "id")]["at_chance"] is False
    by_set = {r["source"]: r for r in eval_set_slopes(a)}
    assert by_set["real"]["ood-a"] == "at chance"


def test_chance_uses_the_classes_the_set_was_evaluated_on() -> None:
    """An OOD set restricted to 2 classes has chance error 0.5, not 1 − 1/10."""
    ev = EvalRecord("ood", top1=0.52, loss=1.0, per_class={"a": 0.5, "b": 0.54}, n=400)
    c = chance.check([(4, 1 - ev.top1, ev.n), (8, 0.47, 400)], classes=len(ev.per_class))
    assert c is not None and c.chance_error == 0.5 and c.at_chance
