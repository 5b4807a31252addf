"""Committed gRPC/protobuf stubs must match what `make proto` generates now."""

from __future__ import annotations

import filecmp
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parents[3]


def test_generated_stubs_are_current(tmp_path: Path) -> None:
    protos = sorted((ROOT / "protos" / "synscale" / "v1").glob("*.proto"))
    assert protos
    args = ["protoc", f"-I{ROOT / 'protos'}", f"--python_out={tmp_path}", f"--pyi_out={tmp_path}",
            f"--grpc_python_out={tmp_path}", *map(str, protos)]
    assert protoc.main(args) == 0
    fresh = sorted(p.name for p in (tmp_path / "synscale" / "v1").iterdir())
    committed_dir = ROOT / "shared" / "src" / "synscale" / "v1"
    for name in fresh:
        committed = committed_dir / name
        assert committed.exists(), f"{name} is not committed; run `make proto`"
        assert filecmp.cmp(committed, tmp_path / "synscale" / "v1" / name, shallow=False), (
            f"{name} is stale; run `make proto`"
        )
    stale_extra = {p.name for p in committed_dir.glob("*_pb2*.py*")} - set(fresh)
    assert not stale_extra, f"stubs without a .proto: {stale_extra}"


def test_services_are_declared() -> None:
    from synscale.v1 import generator_pb2, prompter_pb2, scorer_pb2, study_pb2, trainer_pb2

    names = {
        svc for mod in (prompter_pb2, generator_pb2, scorer_pb2, trainer_pb2, study_pb2)
        for svc in mod.DESCRIPTOR.services_by_name
    }
    assert names == {"Prompter", "Generator", "Scorer", "Trainer", "Analyzer"}
