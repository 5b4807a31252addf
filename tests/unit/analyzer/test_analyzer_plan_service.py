"""`synscale plan` and the PlanStudy gRPC method on a finished (fake-trained) study.

The fake trainer's laws (conftest) make the synthetic ID slope grow with CFG, so at a target
beyond the pilot the highest CFG must rank first, in both the gRPC reply and the CLI.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import grpc
import pytest

from synscale.cli import main
from synscale.study import StudySpec, parse_study
from synscale.v1 import study_pb2


def _finish(served, spec: StudySpec) -> None:  # type: ignore[no-untyped-def]
    runner, stub, _ = served
    stub.SubmitStudy(study_pb2.SubmitStudyRequest(spec_yaml=spec.to_yaml()))
    pump = threading.Thread(target=runner.pump)
    pump.start()
    list(stub.WatchStudy(study_pb2.StudyRef(study_id=spec.study_id), timeout=120))
    pump.join()


def test_plan_study_ranks_the_steepest_cell_first_and_writes_a_valid_followup(  # type: ignore[no-untyped-def]
    served, toy_spec: StudySpec,
) -> None:
    _finish(served, toy_spec)
    _, stub, _ = served
    reply = stub.PlanStudy(study_pb2.PlanRequest(study_id=toy_spec.study_id, target_per_class=128))
    planned = [c for c in reply.cells if not c.note]
    assert len(planned) == 4 and all(c.target_n == 128 for c in planned)
    assert planned[0].label.startswith("fake|cfg=3|")
    assert all(c.lo <= c.predicted <= c.hi for c in planned)
    assert [c.predicted for c in planned] == sorted(c.predicted for c in planned)
    doc = json.loads(reply.plan_json)
    assert doc["best"] == reply.best and doc["real"]["label"] == "real"
    assert sum(dict(reply.allocation).values()) == 128 * 3
    follow = parse_study(reply.followup_yaml, "followup")
    assert follow.generators[0].cfg == [3.0] or not reply.decided
    assert 128 in follow.sizes and follow.sizes[0] == 45  # validation size sqrt(16 * 128)
    assert "Predicted fashion-mnist-test error" in reply.followup_yaml
    runner = served[0]
    report = stub.GetReport(study_pb2.StudyRef(study_id=toy_spec.study_id))
    section = json.loads(runner.store.get(report.json_key))["planner"]
    assert section["candidates"][0]["target_n"] == 4 * 16 and section["best"].startswith("fake|cfg=3|")
    assert "## Planner" in runner.store.get(report.markdown_key).decode()


def test_plan_study_refuses_a_far_target_and_names_a_bad_budget(  # type: ignore[no-untyped-def]
    served, toy_spec: StudySpec,
) -> None:
    _finish(served, toy_spec)
    _, stub, _ = served
    reply = stub.PlanStudy(study_pb2.PlanRequest(study_id=toy_spec.study_id, target_per_class=16 * 100))
    assert reply.verdict.startswith("refused") and not reply.best and not reply.followup_yaml
    assert all("100× the largest pilot size 16" in c.note for c in reply.cells)
    with pytest.raises(grpc.RpcError) as err:
        stub.PlanStudy(study_pb2.PlanRequest(study_id=toy_spec.study_id, budget_gpu_hours=2.0))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "no cost per image for generator 'fake'" in err.value.details()


def test_the_cli_plans_an_embedded_store_and_writes_the_followup(  # type: ignore[no-untyped-def]
    served, toy_spec: StudySpec, tmp_path: Path, capsys,
) -> None:
    _finish(served, toy_spec)
    study = tmp_path / "toy.yaml"
    study.write_text(toy_spec.to_yaml())
    out = tmp_path / "next.yaml"
    assert main(["plan", str(study), "--data-dir", str(tmp_path), "--target-per-class", "64",
                 "--followup", str(out), "--json", str(tmp_path / "plan.json")]) == 0
    text = capsys.readouterr().out
    assert "**Verdict:**" in text and "| 1 | fake\\|cfg=3\\|" in text
    assert parse_study(out.read_text()).name == "toy-orchestration-followup"
    assert json.loads((tmp_path / "plan.json").read_text())["candidates"][0]["target_n"] == 64
    missing = str(tmp_path / "nowhere")
    assert main(["plan", str(study), "--data-dir", missing, "--target-per-class", "64"]) == 2
    assert "does not exist: run the pilot first" in capsys.readouterr().err
