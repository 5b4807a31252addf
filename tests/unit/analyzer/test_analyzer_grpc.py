"""The Analyzer gRPC service and the `synscale study` CLI in front of it."""

from __future__ import annotations

import threading
from pathlib import Path

import grpc
import pytest

from synscale.cli import main
from synscale.study import StudySpec
from synscale.v1 import study_pb2


def test_bad_requests_name_the_problem(served) -> None:  # type: ignore[no-untyped-def]
    _, stub, _ = served
    with pytest.raises(grpc.RpcError) as err:
        stub.SubmitStudy(study_pb2.SubmitStudyRequest(
            spec_yaml="name: x\ngenerators: [{name: g, cfg: [1, 1]}]\nimages_per_class: [4]\n"))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "generators[0].cfg" in err.value.details()
    with pytest.raises(grpc.RpcError) as err:
        stub.GetStatus(study_pb2.StudyRef(study_id="nope-00000000"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as err:
        stub.GetStatus(study_pb2.StudyRef(study_id=" "))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_submit_watch_until_done_then_report(  # type: ignore[no-untyped-def]
    served, toy_spec: StudySpec, capsys, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    runner, stub, address = served
    status = stub.SubmitStudy(study_pb2.SubmitStudyRequest(spec_yaml=toy_spec.to_yaml()))
    assert status.study_id == toy_spec.study_id and status.state == "running"
    with pytest.raises(grpc.RpcError) as err:
        stub.GetReport(study_pb2.StudyRef(study_id=toy_spec.study_id))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    pump = threading.Thread(target=runner.pump)
    pump.start()
    seen = list(stub.WatchStudy(study_pb2.StudyRef(study_id=toy_spec.study_id), timeout=120))
    pump.join()
    assert seen[-1].state == "done"
    assert len(seen) >= 2  # intermediate progress was streamed
    training = [next(s for s in st.stages if s.stage == "training") for st in seen]
    assert training[-1].done == training[-1].total == 27
    assert [t.done for t in training] == sorted(t.done for t in training)
    report = stub.GetReport(study_pb2.StudyRef(study_id=toy_spec.study_id))
    assert runner.store.exists(report.html_key) and report.json_key.endswith("report.json")
    capsys.readouterr()
    assert main(["study", "watch", toy_spec.study_id, "--address", address]) == 0
    assert f"study {toy_spec.study_id}: done" in capsys.readouterr().out
    assert main(["study", "report", toy_spec.study_id, "--address", address]) == 0
    assert report.html_key in capsys.readouterr().out

    # --download: from the embedded store under SYNSCALE_DATA_DIR (S3 when S3_ENDPOINT is set).
    monkeypatch.delenv("S3_ENDPOINT", raising=False)
    monkeypatch.setenv("SYNSCALE_DATA_DIR", str(tmp_path / "elsewhere"))
    assert main(["study", "report", toy_spec.study_id, "--address", address, "--download",
                 str(tmp_path / "dl")]) == 2
    assert "no report files in" in capsys.readouterr().err
    monkeypatch.setenv("SYNSCALE_DATA_DIR", str(runner.data_dir))
    assert main(["study", "report", toy_spec.study_id, "--address", address, "--download",
                 str(tmp_path / "dl")]) == 0
    assert (tmp_path / "dl" / "report.html").read_bytes() == runner.store.get(report.html_key)
    assert (tmp_path / "dl" / "report.json").exists()


def test_cancel_over_grpc_and_cli(served, toy_spec: StudySpec, capsys) -> None:  # type: ignore[no-untyped-def]
    _, stub, address = served
    stub.SubmitStudy(study_pb2.SubmitStudyRequest(spec_yaml=toy_spec.to_yaml()))
    assert main(["study", "cancel", toy_spec.study_id, "--address", address]) == 0
    assert "cancelled" in capsys.readouterr().out
    assert stub.GetStatus(study_pb2.StudyRef(study_id=toy_spec.study_id)).state == "cancelled"
    watched = list(stub.WatchStudy(study_pb2.StudyRef(study_id=toy_spec.study_id), timeout=10))
    assert [w.state for w in watched] == ["cancelled"]
    assert main(["study", "status", toy_spec.study_id, "--address", address]) == 0
    out = capsys.readouterr().out
    assert "training" in out and "generation" in out


def test_cli_validate(tmp_path: Path, toy_spec: StudySpec, capsys) -> None:  # type: ignore[no-untyped-def]
    good = tmp_path / "good.yaml"
    good.write_text(toy_spec.to_yaml())
    assert main(["study", "validate", str(good)]) == 0
    assert "27 training runs" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text(toy_spec.to_yaml().replace("classname", "no_such_strategy", 1))
    assert main(["study", "validate", str(bad)]) == 2
    assert "strategies" in capsys.readouterr().err
