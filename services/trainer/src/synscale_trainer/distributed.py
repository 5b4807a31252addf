"""Data-parallel training under torchrun: `torchrun ... -m synscale_trainer.distributed --job J`.

Every rank runs this module; torchrun supplies RANK, WORLD_SIZE, LOCAL_RANK and the
rendezvous. The run is the same job `run_training` trains (same plan, recipe, model,
optimizer and schedule), with these differences (docs/scaling.md "Multi-node training"):

- data: rank r reads only the shards of its canonical streams (partition.py), and the
  global batches are the same for every world size; the per-rank batch is the global
  batch divided among the ranks (recipe.batch_size / world size for balanced streams);
- gradients: the model runs under DistributedDataParallel (recipe `parallel: ddp`) or
  FSDP2 `fully_shard` (`parallel: fsdp`). The loss each rank back-propagates is its
  share of the global batch's mean (sum of its items x world / global count), so the
  all-reduced gradient is exactly the gradient of the global batch's mean loss, even
  when the ranks' shares are unequal at the end of an epoch;
- global batch, step count and learning-rate schedule come from the recipe alone, so
  they do not depend on the world size;
- rank 0 writes the checkpoint and the RunResult; a checkpoint stores (epoch, global
  batches consumed), which names the same images on any world size, so a run resumes
  on a different number of ranks.

The single-process trainer (`run_training`) keeps its own data order (one stream per
loader worker); a checkpoint of one is not resumed by the other (`ORDER`).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict, set_state_dict
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from synscale import codecs
from synscale.config import RuntimeConfig, make_store
from synscale.errors import InvalidInput, PreconditionFailed
from synscale.settings import pick_device
from synscale.store.base import ObjectStore
from synscale.store.file import FileStore
from synscale.v1 import trainer_pb2
from synscale_trainer import checkpoint, jobs, partition
from synscale_trainer.launch import STORE_PREFIX, job_key, store_ref
from synscale_trainer.plan import ShardSource
from synscale_trainer.stream import StreamingDataset
from synscale_trainer.train import PreparedRun, TrainOptions, _Runner, prepare

log = logging.getLogger(__name__)
ORDER = "canonical-streams-v1"  # the data order a distributed checkpoint's position refers to
FSDP_MIN_PARAMS = 5_000_000  # parameters per FSDP unit (shard_units)


@dataclass(frozen=True)
class World:
    """This process's place in the torchrun job (RANK, WORLD_SIZE, LOCAL_RANK)."""

    rank: int
    size: int
    local_rank: int

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> World:
        e = os.environ if env is None else env
        missing = [k for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK") if k not in e]
        if missing:
            raise PreconditionFailed(
                f"{', '.join(missing)} unset: start this module with torchrun "
                "(torchrun --nproc-per-node N -m synscale_trainer.distributed --job ...)"
            )
        return cls(int(e["RANK"]), int(e["WORLD_SIZE"]), int(e["LOCAL_RANK"]))

    @property
    def is_main(self) -> bool:
        return self.rank == 0


Item = tuple[int, str, torch.Tensor, int, str]  # stream, uid, image, label, text


class RankStreams(IterableDataset):  # type: ignore[type-arg]
    """One rank's canonical streams for one epoch, after the images already trained on.

    Each loader worker reads its share of the rank's streams (partition.worker_streams)
    and alternates between them image by image, the order in which the rank consumes
    them, so the main process's per-stream queues stay short. Skipped images (the data
    position of a resumed run) are read but not decoded into tensors.
    """

    def __init__(
        self, data: StreamingDataset, epoch: int, streams: int, owned: Sequence[int], skip: Sequence[int]
    ) -> None:
        self.data = data
        self.epoch = epoch
        self.streams = streams
        self.owned = list(owned)
        self.skip = list(skip)  # per canonical stream

    def __iter__(self) -> Iterator[Item]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        mine = partition.worker_streams(self.owned, worker, workers)
        its = {v: self._stream(v) for v in mine}
        while its:
            for v in list(its):
                item = next(its[v], None)
                if item is None:
                    del its[v]
                else:
                    yield item

    def _stream(self, v: int) -> Iterator[Item]:
        for i, (uid, raw, label, text) in enumerate(self.data.stream_items(self.epoch, v, self.streams)):
            if i >= self.skip[v]:
                yield v, uid, self.data.prepare(self.epoch, uid, raw), label, text


@dataclass
class LocalBatch:
    """This rank's share of one global batch (possibly empty at the end of an epoch)."""

    images: torch.Tensor
    labels: torch.Tensor
    texts: list[str]
    uids: list[str]
    global_count: int  # images in the whole global batch, over all ranks


def rank_batches(
    items: Iterator[Item], counts: Iterator[list[int]], owned: Sequence[int], empty: torch.Tensor
) -> Iterator[LocalBatch]:
    """Assemble this rank's share of each global batch from its streams' items."""
    queues: dict[int, deque[Item]] = {v: deque() for v in owned}
    exhausted = False
    for want in counts:
        while not exhausted and any(len(queues[v]) < want[v] for v in owned):
            item = next(items, None)
            if item is None:
                exhausted = True  # a stream read fewer images than planned (logged by stream.py)
                break
            queues[item[0]].append(item)
        taken = [queues[v].popleft() for v in owned for _ in range(min(want[v], len(queues[v])))]
        images = torch.stack([t[2] for t in taken]) if taken else empty
        yield LocalBatch(
            images,
            torch.tensor([t[3] for t in taken], dtype=torch.long),
            [t[4] for t in taken],
            [t[1] for t in taken],
            sum(want),
        )


class DistributedRunner(_Runner):
    """_Runner with the data, loss, checkpoint and result steps made data-parallel."""

    def __init__(
        self,
        run: PreparedRun,
        store: ObjectStore,
        options: TrainOptions,
        world: World,
        *,
        seen_dir: Path | None = None,
        kill_after_step: int = 0,
    ) -> None:
        self.world = world
        self.streams = int(run.recipe.data_streams)
        self.owned = partition.owned_streams(self.streams, world.rank, world.size)
        self.seen_dir = seen_dir
        self.kill_after_step = kill_after_step
        self._timed_due = False
        self._batch: LocalBatch | None = None
        super().__init__(run, store, options, None, self._kill_hook if kill_after_step else None)
        self.loss_fn = nn.CrossEntropyLoss(label_smoothing=run.recipe.label_smoothing, reduction="sum")

    # -- model --------------------------------------------------------------------------
    def _wrap(self, model: nn.Module) -> nn.Module:
        if self.run_.recipe.parallel == "fsdp":
            net: nn.Module = apply_fsdp(model)
        else:
            ids = [self.device.index or 0] if self.device.type == "cuda" else None
            net = nn.parallel.DistributedDataParallel(model, device_ids=ids)
        return super()._wrap(net)

    # -- checkpoint state ---------------------------------------------------------------
    def _full_state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """(model, optimizer) state as whole tensors, gathered from every rank (collective)."""
        opts = StateDictOptions(full_state_dict=True, cpu_offload=True)
        return get_state_dict(self.model, self.optimizer, options=opts)

    def _state(self) -> dict[str, Any]:
        model, optim = self._full_state()
        state = super()._state() | {"model": model, "optimizer": optim}
        state |= {"order": ORDER, "data_streams": self.streams, "world_size": self.world.size}
        return state

    def _save(self) -> None:
        state = self._state()  # every rank takes part in gathering it
        if self.world.is_main:
            checkpoint.save(self.store, self.ckpt_key, state)
        dist.barrier()  # no rank runs ahead of a checkpoint that may be the one it resumes

    def _restore_weights(self, state: dict[str, Any]) -> None:
        if state.get("order") != ORDER or int(state.get("data_streams", -1)) != self.streams:
            raise PreconditionFailed(
                f"checkpoint {self.ckpt_key} was written by the single-process trainer or with other "
                f"data_streams (order {state.get('order', 'worker-streams')!r}, streams "
                f"{state.get('data_streams')}); its data position means nothing here: resume it with "
                "the trainer that wrote it, or delete it to start over"
            )
        set_state_dict(
            self.model,
            self.optimizer,
            model_state_dict=state["model"],
            optim_state_dict=state["optimizer"],
            options=StateDictOptions(full_state_dict=True),
        )
        log.info("rank %d loads a checkpoint written by %s ranks", self.world.rank, state.get("world_size"))

    def _checkpoint_due(self) -> bool:
        # the step rule is the same on every rank; the clock is rank 0's, shared in the step's
        # all-reduce, so that every rank takes part in the same checkpoints
        return self._timed_due or self.step % self.checkpoint_every == 0

    # -- data ---------------------------------------------------------------------------
    def _stream_lengths(self, dataset: StreamingDataset) -> list[int]:
        return [
            sum(s.count for s in dataset.worker_sources(self.epoch, v, self.streams))
            for v in range(self.streams)
        ]

    def _epoch_shards(self, dataset: StreamingDataset) -> list[ShardSource]:
        per = [dataset.worker_sources(self.epoch, v, self.streams) for v in self.owned]
        interleaved = [s for row in zip(*_padded(per), strict=True) for s in row if s is not None]
        return [s for s in interleaved if isinstance(s, ShardSource)]

    def _epoch_batches(
        self, dataset: StreamingDataset
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor, list[str]]]:
        lengths = self._stream_lengths(dataset)
        batch = self.run_.recipe.batch_size
        skip = partition.consumed(lengths, batch, self.batch_in_epoch)
        source = RankStreams(dataset, self.epoch, self.streams, self.owned, skip)
        workers = min(self.options.num_workers, len(self.owned))
        loader = DataLoader(
            source, batch_size=None, num_workers=workers, prefetch_factor=64 if workers else None
        )
        counts = partition.step_counts(lengths, batch)
        for _ in range(self.batch_in_epoch):
            next(counts)
        size = self.run_.train_pre.image_size
        empty = torch.zeros(0, self.run_.train_pre.channels, size, size)
        for local in rank_batches(iter(loader), counts, self.owned, empty):
            self._batch = local
            yield local.images, local.labels, local.texts

    # -- the step -----------------------------------------------------------------------
    def _step(self, images: torch.Tensor, labels: torch.Tensor, texts: list[str]) -> None:
        local = self._batch
        assert local is not None
        loss_sum = self._loss(images, labels, texts)
        # each rank's share of the global mean; DDP's all-reduce averages over the ranks
        loss = loss_sum * (self.world.size / max(1, local.global_count))
        every_s = self.options.checkpoint_every_s
        timed = self.world.is_main and every_s > 0 and time.monotonic() - self._last_save >= every_s
        stats = torch.tensor([float(loss_sum.detach()), float(len(local.uids)), float(timed)])
        dist.all_reduce(stats)
        self._timed_due = bool(stats[2] > 0)
        self._optimize(loss)
        self._advance(float(stats[0] / max(1.0, float(stats[1]))))
        self._record_seen(local.uids)

    def _kill_hook(self) -> bool:
        """Test hook, asked after each step's checkpoint: rank 0 dies as a killed pod would."""
        if self.world.is_main and self.step >= self.kill_after_step:
            log.warning("test hook: rank 0 kills itself after step %d", self.step)
            os.kill(os.getpid(), signal.SIGKILL)
        return False

    def _loss(self, images: torch.Tensor, labels: torch.Tensor, texts: list[str]) -> torch.Tensor:
        if self.run_.is_clip:  # per-rank negatives; scaled back to a sum over the rank's items
            return super()._loss(images, labels, texts) * len(texts) if texts else self._zero_loss(images)
        return super()._loss(images, labels, texts)

    def _zero_loss(self, images: torch.Tensor) -> torch.Tensor:
        return sum((p.sum() * 0.0 for p in self.model.parameters()), images.new_zeros(()))

    def _record_seen(self, uids: list[str]) -> None:
        if self.seen_dir is None:
            return
        self.seen_dir.mkdir(parents=True, exist_ok=True)
        with (self.seen_dir / f"rank{self.world.rank}-of-{self.world.size}.tsv").open("a") as f:
            f.writelines(f"{self.epoch}\t{self.step}\t{uid}\n" for uid in uids)

    # -- result -------------------------------------------------------------------------
    def run(self) -> trainer_pb2.RunResult:
        self._restore()
        if not self.complete:
            self._train()
            self.complete = True
            self._save()
        model_state, _ = self._full_state()
        if not self.world.is_main:
            return self._result("done", [])
        plain = self.run_.build().to(self.device)  # evaluated unwrapped and whole, on rank 0
        plain.load_state_dict(model_state)
        self.model = plain
        result = self._result("done", self._evaluate())
        self.store.put(
            jobs.result_key(self.job), jobs.result_to_json(result), content_type="application/json"
        )
        return result


def shard_units(model: nn.Module, min_params: int) -> list[nn.Module]:
    """The modules FSDP shards separately, inner before outer, the model itself last.

    Size-based, as FSDP1's size_based_auto_wrap_policy: walking the tree bottom-up, a
    module becomes a unit once the parameters not yet in a unit below it reach
    `min_params` (FSDP_MIN_PARAMS = 5M: a ViT-B/16 block is 7.1M, its layers 2.4M each, so
    its 12 blocks become units and only one block's parameters are gathered at a time). A
    model smaller than that is one unit.
    """
    loose: dict[nn.Module, int] = {}
    units: list[nn.Module] = []
    for module in reversed(list(model.modules())):  # every module after all its descendants
        own = sum(p.numel() for p in module.parameters(recurse=False))
        count = own + sum(loose[c] for c in module.children())
        if module is not model and count >= min_params:
            units.append(module)
            count = 0
        loose[module] = count
    return [*units, model]


def apply_fsdp(model: nn.Module, min_params: int = FSDP_MIN_PARAMS) -> nn.Module:
    """FSDP2: shard `model`'s parameters in place, unit by unit (shard_units); returns it."""
    from torch.distributed.fsdp import fully_shard

    for unit in shard_units(model, min_params):  # inner units first, the root last
        fully_shard(unit)
    return model


def _padded(rows: list[list[Any]]) -> list[list[Any]]:
    width = max((len(r) for r in rows), default=0)
    return [r + [None] * (width - len(r)) for r in rows]


def load_job(ref: str, store: ObjectStore) -> trainer_pb2.TrainingJob:
    """The job from a JSON file (TrainingJob in proto JSON) or `store:<key>` in the store."""
    data = store.get(ref[len(STORE_PREFIX) :]) if ref.startswith(STORE_PREFIX) else Path(ref).read_bytes()
    try:
        return codecs.training_job_from_json(data)
    except ValueError as exc:
        raise InvalidInput("--job", f"{ref}: not a TrainingJob in proto JSON: {exc}") from None


def job_to_json(job: trainer_pb2.TrainingJob) -> str:
    """The job as the entry point reads it (synscale.codecs' job.json form)."""
    return codecs.training_job_to_json(job).decode()


def put_job(store: ObjectStore, job: trainer_pb2.TrainingJob) -> str:
    """Store the job beside its run (runs/<run>/job.json); returns the `--job` value for it.

    What a launcher (the TrainJob the trainer service submits) passes to every pod, so all
    ranks read one job from the store they train from.
    """
    job = jobs.normalise(job)
    store.put(job_key(job), codecs.training_job_to_json(job), content_type="application/json")
    return store_ref(job)


def train_distributed(
    job: trainer_pb2.TrainingJob, store: ObjectStore, options: TrainOptions, world: World, **hooks: Any
) -> trainer_pb2.RunResult:
    """One rank's part of a data-parallel run (the process group must be initialised)."""
    job = jobs.normalise(job)
    done = jobs.load_result(store, job)
    if done is not None and done.status == "done":
        return done
    run = prepare(job, store, options)
    return DistributedRunner(run, store, options, world, **hooks).run()


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m synscale_trainer.distributed", description=__doc__.split("\n")[0]
    )
    p.add_argument("--job", required=True, help="TrainingJob as proto JSON: a file, or store:<key>")
    p.add_argument("--store", default="", help="FileStore root (default: the store from the environment)")
    p.add_argument("--bucket", default="synscale")
    p.add_argument("--cache-dir", default="", help="local shard cache (default: SYNSCALE_TRAINER_CACHE_DIR)")
    p.add_argument("--workers", type=int, default=None, help="loader workers per rank")
    p.add_argument("--device", default="", help="cpu or cuda (each rank takes cuda:LOCAL_RANK)")
    p.add_argument("--checkpoint-every", type=int, default=0, help="steps between checkpoints (0: ~20 a run)")
    p.add_argument("--seen-dir", default="", help="test hook: each rank appends the sample ids it trains on")
    p.add_argument("--kill-after-step", type=int, default=0, help="test hook: rank 0 SIGKILLs itself")
    p.add_argument("--json", action="store_true", help="rank 0 prints the RunResult as JSON")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s rank" + os.environ.get("RANK", "?") + " %(name)s %(message)s"
    )
    world = World.from_env()
    if args.store:
        store: ObjectStore = FileStore(Path(args.store), args.bucket)
        options = TrainOptions(cache_dir=Path(args.store).parent / "cache" / "shards")
    else:
        cfg = RuntimeConfig.from_env()
        store, options = make_store(cfg), TrainOptions.from_env(cfg.data_dir)
    device = torch.device(args.device or options.device or pick_device(torch.cuda.is_available, {}))
    if device.type == "cuda":
        device = torch.device("cuda", world.local_rank)
        torch.cuda.set_device(device)
    options.device = str(device)
    options.checkpoint_every = args.checkpoint_every
    if args.cache_dir:
        options.cache_dir = Path(args.cache_dir)
    if args.workers is not None:
        options.num_workers = args.workers
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        hooks = {
            "seen_dir": Path(args.seen_dir) if args.seen_dir else None,
            "kill_after_step": args.kill_after_step,
        }
        result = train_distributed(load_job(args.job, store), store, options, world, **hooks)
    finally:
        dist.destroy_process_group()
    if world.is_main and args.json:
        print(jobs.result_to_json(result).decode())
    return 0 if result.status == "done" else 1


if __name__ == "__main__":
    sys.exit(main())
