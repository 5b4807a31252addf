"""1 rank against 2 ranks (torchrun, CPU/gloo), and runs resumed on another world size.

Prints one JSON object. One fixture cell of real Fashion-MNIST images (fixtures.py), the
embedded CNN, the same job everywhere (same global batch, steps, seed); each run gets a
fresh copy of the store:

- single_process: `run_training`, the in-process trainer (its own data order, stream.py);
- ranks_1, ranks_2: `torchrun --standalone --nproc-per-node {1,2} -m synscale_trainer.distributed`;
- resumed_2_to_1 / resumed_1_to_2: killed (SIGKILL of rank 0) after `--kill-at` steps on one
  world size, finished on the other.

Per run: train loss (mean over the last 50 steps), top-1 and loss on the Fashion-MNIST test
images, images trained on (from the ranks' `--seen-dir` records), whether every planned
image was seen exactly once in each epoch, and whether the (epoch, step, image) records
equal those of ranks_2. Differences to ranks_1 are the figures docs/scaling.md quotes.

    python bench/ddp_equivalence.py [--per-class 30] [--steps 60] [--batch 32] [--kill-at 23]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import torch

from synscale.store.file import FileStore
from synscale.study import TrainingRecipe
from synscale.v1 import common_pb2, trainer_pb2
from synscale_trainer import jobs
from synscale_trainer.distributed import job_to_json
from synscale_trainer.fixtures import write_fake_cell
from synscale_trainer.launch import Seen, read_seen, run_local
from synscale_trainer.train import TrainOptions, run_training

STUDY = "study-ddp-bench"


def _job(args: argparse.Namespace) -> trainer_pb2.TrainingJob:
    recipe = TrainingRecipe(
        min_steps=args.steps, max_steps=args.steps, batch_size=args.batch, data_streams=args.streams
    )
    return jobs.normalise(
        trainer_pb2.TrainingJob(
            study_id=STUDY,
            arch="embedded-cnn",
            cells=[common_pb2.CellId(generator="fake", cfg=2.0, strategy="classname")],
            n_per_class=args.per_class,
            seed=args.seed,
            eval_sets=["fashion-mnist-test"],
            eval_limit=args.eval_limit,
            recipe_json=recipe.model_dump_json(),
        )
    )


def _summary(result: trainer_pb2.RunResult) -> dict[str, Any]:
    e = result.evals[0]
    return {
        "steps": result.steps,
        "train_loss": round(result.train_loss, 4),
        "top1": round(e.top1, 4),
        "eval_loss": round(e.loss, 4),
    }


def _seen_figures(
    seen: list[Seen], images: int, reference: Counter[tuple[int, int, str]] | None
) -> dict[str, Any]:
    epochs = sorted({s.epoch for s in seen})
    full = [e for e in epochs if sum(1 for s in seen if s.epoch == e) >= images]
    once = all(set(Counter(s.uid for s in seen if s.epoch == e).values()) == {1} for e in epochs)
    records = Counter((s.epoch, s.step, s.uid) for s in seen)
    return {
        "images_seen": len(seen),
        "full_epochs": len(full),
        "each_image_at_most_once_per_epoch": once,
        "same_records_as_ranks_2": None if reference is None else records == reference,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--per-class", type=int, default=30)
    p.add_argument("--shard-size", type=int, default=8)
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--streams", type=int, default=4)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--kill-at", type=int, default=23)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-limit", type=int, default=2000)
    args = p.parse_args()
    torch.set_num_threads(1)
    job = _job(args)
    images = 10 * args.per_class
    tmp = Path(tempfile.mkdtemp(prefix="ddp-bench-"))
    base = tmp / "base"
    write_fake_cell(
        FileStore(base / "store", "synscale"),
        STUDY,
        per_class=args.per_class,
        shard_size=args.shard_size,
        source="train",
    )
    (base / "job.json").write_text(job_to_json(job))

    def fresh(name: str) -> Path:
        shutil.copytree(base / "store", tmp / name / "store")
        return tmp / name

    def launch(root: Path, nproc: int, *extra: str) -> int:
        out = run_local(
            nproc,
            base / "job.json",
            root / "store",
            "--workers",
            str(args.workers),
            "--seen-dir",
            str(root / "seen"),
            *extra,
        )
        return out.returncode

    def result(root: Path) -> trainer_pb2.RunResult:
        found = jobs.load_result(FileStore(root / "store", "synscale"), job)
        if found is None:
            raise SystemExit(f"{root}: the run wrote no result.json")
        return found

    out: dict[str, Any] = {"config": vars(args) | {"images": images}}
    root = fresh("single")
    opts = TrainOptions(cache_dir=root / "cache", num_workers=args.workers, checkpoint_every_s=0)
    out["single_process"] = _summary(run_training(job, FileStore(root / "store", "synscale"), options=opts))
    for n in (2, 1):
        root = fresh(f"ranks{n}")
        launch(root, n)
        out[f"ranks_{n}"] = _summary(result(root))
        out[f"ranks_{n}"]["seen"] = read_seen(root / "seen")
    reference = Counter((s.epoch, s.step, s.uid) for s in out["ranks_2"]["seen"])
    for n in (2, 1):
        out[f"ranks_{n}"] |= _seen_figures(out[f"ranks_{n}"].pop("seen"), images, reference)
    for first, then in ((2, 1), (1, 2)):
        root = fresh(f"resume{first}{then}")
        code = launch(
            root, first, "--kill-after-step", str(args.kill_at), "--checkpoint-every", str(args.kill_at)
        )
        before = [s for s in read_seen(root / "seen") if s.step <= args.kill_at]
        launch(root, then)
        after = [s for s in read_seen(root / "seen") if s.world == then]
        out[f"resumed_{first}_to_{then}"] = (
            _summary(result(root))
            | {"killed_exit_code": code}
            | _seen_figures(before + after, images, reference)
        )
    ref = out["ranks_1"]
    out["vs_ranks_1"] = {
        k: {m: round(out[k][m] - ref[m], 4) for m in ("train_loss", "top1", "eval_loss")}
        for k in ("single_process", "ranks_2", "resumed_2_to_1", "resumed_1_to_2")
    }
    shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
