"""The torchrun command line of a data-parallel run, and a local launcher for tests and benches.

`torchrun_command` is the one place that spells the entry point's command line
(docs/scaling.md "Multi-node training"): a TrainJob pod runs the same command with the
node count and rendezvous of its job; tests and bench/ddp_equivalence.py launch it on
one machine with `--standalone`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from synscale import layout
from synscale.v1 import trainer_pb2

ENTRY = "synscale_trainer.distributed"
STORE_PREFIX = "store:"  # `--job store:<key>`: read the job from the object store, not a file
JOB_FILE = "job.json"  # the TrainingJob, as JSON, beside the run's result.json


def job_key(job: trainer_pb2.TrainingJob) -> str:
    """The store key where every rank (and every TrainJob pod) finds the job it trains."""
    return layout.run_key(job.study_id, job.run_id, JOB_FILE)


def store_ref(job: trainer_pb2.TrainingJob) -> str:
    """The `--job` value naming the stored job (`job_key`)."""
    return STORE_PREFIX + job_key(job)


def entry_args(job_ref: str, *extra: str) -> list[str]:
    """What follows `torchrun <rendezvous options>`: the module and its arguments."""
    return ["-m", ENTRY, "--job", job_ref, *extra]


def torchrun_command(
    nproc: int, job_ref: str, *extra: str, nnodes: int = 1, rendezvous: Sequence[str] = ("--standalone",)
) -> list[str]:
    """`python -m torch.distributed.run` (= torchrun) for `nnodes` x `nproc` ranks."""
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nnodes={nnodes}",
        f"--nproc-per-node={nproc}",
        *rendezvous,
        *entry_args(job_ref, *extra),
    ]


@dataclass(frozen=True)
class Launched:
    returncode: int
    stdout: str
    stderr: str


def run_local(
    nproc: int, job_path: Path, store_root: Path, *extra: str, timeout_s: float = 600.0
) -> Launched:
    """Run the job on `nproc` local CPU ranks (gloo) against a FileStore; wait for it."""
    env = dict(os.environ, OMP_NUM_THREADS="1", SYNSCALE_DEVICE="cpu")
    cmd = torchrun_command(nproc, str(job_path), "--store", str(store_root), "--device", "cpu", *extra)
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout_s, check=False)
    return Launched(done.returncode, done.stdout, done.stderr)


@dataclass(frozen=True)
class Seen:
    """One image one rank trained on (the `--seen-dir` test hook's record)."""

    rank: int
    world: int
    epoch: int
    step: int
    uid: str


def read_seen(seen_dir: Path) -> list[Seen]:
    """Every record under `seen_dir` (files rank<r>-of-<world>.tsv: epoch, step, uid)."""
    out = []
    for path in sorted(seen_dir.glob("rank*-of-*.tsv")):
        rank, world = (int(x) for x in path.stem.removeprefix("rank").split("-of-"))
        for line in path.read_text().splitlines():
            epoch, step, uid = line.split("\t")
            out.append(Seen(rank, world, int(epoch), int(step), uid))
    return out
