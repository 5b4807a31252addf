"""The analysis and the report from plain data: numbers, findings, files, and a real browser."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from synscale_analyzer.analysis import Analysis, analyze
from synscale_analyzer.report import render


@pytest.fixture(scope="module")
def analysis(make_input) -> Analysis:  # type: ignore[no-untyped-def]
    return analyze(make_input())


@pytest.fixture(scope="module")
def files(analysis: Analysis) -> dict[str, bytes]:
    return render(analysis)


def test_series_are_grouped_and_fitted(analysis: Analysis) -> None:
    labels = {(s.key.label, s.key.eval_set) for s in analysis.series}
    # real + 6 synthetic cells + 6 mixed, on 2 eval sets
    assert len(labels) == 13 * 2
    real = analysis.series_for("id", "real")[0]
    assert real.power_law is not None
    lo, hi = real.power_law.alpha_ci
    assert lo < 0.5 < hi
    best = max(analysis.series_for("id", "synthetic"), key=lambda s: s.power_law.alpha)  # type: ignore[union-attr]
    assert best.key.cfg == 4.0 and best.key.strategy == "clip_templates"  # α = 0.2 + 0.1 + 0.04


def test_per_class_scalability_correlates_with_recognizability(analysis: Analysis) -> None:
    assert len(analysis.per_class) == 6
    assert all(len(pc.classes) == 5 for pc in analysis.per_class)
    # By construction class k has slope ∝ (0.6 + 0.2k) and F1 rising with k.
    assert all(pc.vs_recognizability.spearman_rho > 0.8 for pc in analysis.per_class)
    assert all(c.estimable for pc in analysis.per_class for c in pc.classes)  # 200 test images per class
    pooled = analysis.pooled["recognizability"]
    # The unit is the class: 5 classes (not 30 (cell, class) pairs). Perfect agreement in every cell
    # is the most extreme of the 5! class permutations (and its mirror): p = 2/120, the smallest
    # two-sided p five classes can give (the former pair-level p < 0.01 double-counted).
    assert pooled.classes == 5 and pooled.pairs == 30 and pooled.rho > 0.5
    assert pooled.p == pytest.approx(2 / 120)


def test_findings_state_the_numbers(analysis: Analysis) -> None:
    text = "\n".join(analysis.findings)
    assert "Best-scaling synthetic cell on id: gen|cfg=4|clip_templates" in text
    assert "never catches up" in text  # real scales faster and is lower everywhere
    assert re.search(r"recognizability peaks in the middle .*best at CFG 2", text)
    assert "diversity falls" in text
    assert "OOD 'ood-a'" in text
    assert "Caution" not in text  # low noise, five sizes: every interval excludes 0


def test_findings_warn_when_slopes_are_indistinguishable_from_zero(make_input) -> None:  # type: ignore[no-untyped-def]
    a = analyze(make_input(sizes=(8, 16, 32), seeds=(0,), noise=0.6, mix=0, cfgs=(1.0,), real_alpha=0.02,
                           strategies=("classname",)))
    assert any(f.startswith("Caution:") for f in a.findings)


def test_findings_report_synthetic_overtaking_real(make_input) -> None:  # type: ignore[no-untyped-def]
    a = analyze(make_input(real_alpha=0.1, mix=0, seeds=(0,)))
    text = "\n".join(a.findings)
    assert "Synthetic data beat real data at equal size" in text


def test_report_files(files: dict[str, bytes]) -> None:
    for name in ("report.html", "report.md", "report.json", "slopes.csv", "points.csv",
                 "scores.csv", "per_class.csv", "fig-scaling-id.png", "fig-slopes.png",
                 "fig-quality-diversity.png", "fig-class-scalability.png", "fig-scaling-ood.png"):
        assert files.get(name), name
    doc = json.loads(files["report.json"])
    assert doc["study_id"] == "toy-0000" and doc["findings"]
    slope_rows = list(csv.DictReader(io.StringIO(files["slopes.csv"].decode())))
    # The plain law for every series; the offset law only where its floor is identified, which
    # the toy laws (no floor) never are: no row with E ≈ 0 and a meaningless α.
    assert len([r for r in slope_rows if r["form"] == "power_law"]) == 26
    assert [r for r in slope_rows if r["form"] == "power_law_offset"] == []
    assert "Offset law E + A·N^−α identified in 0 of 26 series" in files["report.md"].decode()
    md = files["report.md"].decode()
    assert "![Scaling curves on id](fig-scaling-id.png)" in md
    assert "| series | eval set | fit | α [95% CI]" in md
    page = files["report.html"].decode()
    assert page.count("data:image/png;base64,") == 5
    # Self-contained: nothing to fetch.
    assert not re.search(r"""(src|href)=["'](?!data:)""", page)
    assert "<script" not in page


def test_report_is_deterministic(make_input) -> None:  # type: ignore[no-untyped-def]
    small = {"seeds": (0,), "strategies": ("classname",), "mix": 0}
    first = render(analyze(make_input(**small)))
    again = render(analyze(make_input(**small)))
    assert first.keys() == again.keys()
    assert [k for k in first if first[k] != again[k]] == []


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run",
                  "--enable-logging=stderr", "--v=0", "--dump-dom"]


def _chromium(page: Path, tmp: Path) -> tuple[str, list[str]]:
    """Render in headless Chromium; returns the DOM and the page's console messages."""
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (CI must `apt-get install chromium`)")
        pytest.skip("chromium is not installed")
    profile = tmp / f"profile-{page.stem}"
    proc = subprocess.run(
        [exe, *CHROMIUM_FLAGS[:-1], f"--user-data-dir={profile}", CHROMIUM_FLAGS[-1], page.as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    return proc.stdout, console


@pytest.mark.slow
def test_page_renders_in_headless_chromium_without_console_errors(
    files: dict[str, bytes], tmp_path: Path,
) -> None:
    # Control: the harness does see console output, so an empty list below means something.
    control = tmp_path / "control.html"
    control.write_text("<!DOCTYPE html><html><body><script>console.error('probe')</script></body></html>")
    _, control_console = _chromium(control, tmp_path)
    assert any("probe" in line for line in control_console)

    page = tmp_path / "report.html"
    page.write_bytes(files["report.html"])
    dom, console = _chromium(page, tmp_path)
    assert console == []
    assert "<h2>Findings</h2>" in dom
    assert dom.count("<img") == 5


def test_an_error_of_exactly_zero_is_a_win_not_a_missing_value(make_input) -> None:  # type: ignore[no-untyped-def]
    """A synthetic run with 0 errors of 1,000 at N = 128 beats real there (it used to read as missing)."""
    from dataclasses import replace

    inp = make_input(seeds=(0,), mix=0, strategies=("classname",), cfgs=(1.0,))
    runs = tuple(replace(r, evals={**r.evals, "id": replace(r.evals["id"], top1=1.0)})
                 if r.source == "synthetic" and r.n == 128 else r for r in inp.runs)
    a = analyze(replace(inp, runs=runs))
    test = next(c for c in a.family("error vs real at equal N on id") if c.n == 128)
    assert test.estimate < 0 and test.significant
    assert "Synthetic data beat real data at equal size in 1 of 1 cells" in "\n".join(a.findings)
    assert "gen|cfg=1|classname at N = 128" in "\n".join(a.findings)
