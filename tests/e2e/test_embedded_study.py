"""The whole product in one process: examples/toy.yaml through every real service to the report.

Two runs of the toy study: one straight through (in-process), one killed with SIGKILL
part-way (a `synscale study run` subprocess) and resumed on the same directory. They must
end with the same report numbers and the same artifacts, none produced twice.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from synscale.embedded import run_study
from synscale.store.file import FileStore
from synscale.study import StudySpec, load_study

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
TOY = REPO / "examples" / "toy.yaml"


@pytest.fixture(scope="module")
def toy() -> StudySpec:
    return load_study(TOY)


@pytest.fixture(scope="module")
def straight(toy: StudySpec, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:  # type: ignore[type-arg]
    data = tmp_path_factory.mktemp("straight")
    outcome = run_study(toy, data, progress=False)
    assert outcome.state == "done", outcome.dead_letters
    assert outcome.report_json is not None
    return data, json.loads(outcome.report_json.read_bytes())


def _objects(data: Path) -> set[str]:
    """Every object key of the study (as the store lists them), minus analyzer bookkeeping."""
    store = FileStore(data / "store", "synscale")
    return {o.key for o in store.list("studies/") if "/state/" not in o.key}


def test_toy_study_runs_end_to_end(toy: StudySpec, straight: tuple[Path, dict]) -> None:  # type: ignore[type-arg]
    data, doc = straight
    labels = {(s["label"], s["eval_set"]) for s in doc["series"]}
    cells = [f"embedded|cfg={c:g}|classname" for c in toy.generators[0].cfg]
    for es in ("fashion-mnist-test", *toy.evaluation.ood):
        assert ("real", es) in labels
        assert all((c, es) in labels for c in cells)
    real = next(s for s in doc["series"] if s["label"] == "real" and s["eval_set"] == "fashion-mnist-test")
    assert sorted({p[0] for p in real["points"]}) == [2, 4, 8]
    assert all(0.0 <= p[2] <= 1.0 for p in real["points"])
    assert real["fits"]["power_law"]["alpha"] is not None
    assert len(doc["scores"]) == 2 and all(s["macro_f1"] is not None for s in doc["scores"])
    assert doc["findings"]
    # The paper's eight claims, each with a verdict (a toy study may be inconclusive on all).
    assert len(doc["claims"]) == 8
    assert all(c["verdict"] in ("reproduced", "contradicted", "inconclusive") and c["this_study"]
               for c in doc["claims"])
    report = data / "store" / "synscale" / "studies" / toy.study_id / "report"
    markdown = (report / "report.md").read_text()
    first = markdown.index("## What the paper claims, and what this study shows")
    assert first < markdown.index("## Findings")
    assert all(c["verdict"] in markdown[first:markdown.index("## Findings")] for c in doc["claims"])
    html = (report / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 5  # curves, OOD, slopes, quality-diversity, samples
    assert "fig-samples-embedded.png" in (report / "report.md").read_text()
    runs = list((data / "store" / "synscale" / "studies" / toy.study_id / "runs").glob("*/result.json"))
    assert len(runs) == 9


def _run_cli(data: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "synscale.cli", "study", "run", str(TOY), "--data-dir", str(data),
         "--no-progress"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )


def test_killed_and_resumed_study_matches_a_straight_run(
    toy: StudySpec, straight: tuple[Path, dict], tmp_path: Path,  # type: ignore[type-arg]
) -> None:
    data = tmp_path / "killed"
    runs_dir = data / "store" / "synscale" / "studies" / toy.study_id / "runs"
    proc = _run_cli(data)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            if len(list(runs_dir.glob("*/result.json"))) >= 1:
                break
            time.sleep(0.2)
        assert proc.poll() is None, (proc.stdout.read() if proc.stdout else b"").decode()[-3000:]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # the CLI and its data-loader workers, at once
        proc.wait()
    done_before = len(list(runs_dir.glob("*/result.json")))
    assert 1 <= done_before < 9
    assert not (data / "store" / "synscale" / "studies" / toy.study_id / "report").exists()

    outcome = run_study(toy, data, progress=False)
    assert outcome.state == "done", outcome.dead_letters
    assert outcome.report_json is not None
    _, expected = straight
    assert json.loads(outcome.report_json.read_bytes()) == expected
    assert _objects(data) == _objects(straight[0])
