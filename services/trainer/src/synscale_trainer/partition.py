"""Which rank and loader worker reads which shards, and what each global batch holds.

Data-parallel training needs two things at once: each rank reads a disjoint part of the
planned shards (so N ranks stream N times the data, WebDataset-style), and the global
batches do not depend on how many ranks there are (so the loss curve, the learning-rate
schedule and a resumed run are the same on any world size).

Both come from a fixed number of *canonical streams* (the recipe's `data_streams`,
independent of the world size; the idea of MosaicML Streaming's canonical nodes):

- per epoch the sources are permuted with the epoch's seed (StreamingDataset.epoch_order)
  and dealt to the streams, source k to stream k mod V; each stream reads its sources
  through the seeded interleave and shuffle buffer of stream.py, so its image sequence is
  a pure function of (seed, epoch, stream);
- the epoch's global sequence takes one image from each non-empty stream in turn (stream
  0, 1, ..., V-1, 0, ...), and global batch g is positions [g*B, (g+1)*B) of it. Only the
  streams' planned lengths are needed to know how many images of batch g come from each
  stream (`step_counts`), so every rank computes it without reading anything;
- rank r owns the streams v with v mod W == r and reads only their shards; within a rank
  the loader workers split its streams the same way (`worker_streams`).

The data position of a run is therefore (epoch, global batches consumed), which means the
same images on every world size: a checkpoint written by 2 ranks resumes on 1 or 4.
W must not exceed V; W dividing V balances the ranks exactly.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from synscale.errors import InvalidInput


def owned_streams(streams: int, rank: int, world: int) -> list[int]:
    """The canonical streams rank `rank` of `world` reads (v mod world == rank)."""
    if world > streams:
        raise InvalidInput(
            "recipe_json.data_streams",
            f"{streams} data streams cannot feed {world} ranks; set data_streams >= the world size "
            "(a multiple of it balances the ranks)",
        )
    return [v for v in range(streams) if v % world == rank]


def worker_streams(owned: Sequence[int], worker: int, workers: int) -> list[int]:
    """The part of a rank's streams one of its `workers` loader workers reads."""
    return [v for k, v in enumerate(owned) if k % max(1, workers) == worker]


def step_counts(lengths: Sequence[int], batch_size: int) -> Iterator[list[int]]:
    """Per global batch of one epoch: how many of its images come from each stream.

    The epoch's global sequence visits the non-empty streams round-robin one image at a
    time; batch g is the g-th run of `batch_size` images of it (the last may be short).
    Full rounds are counted in one go, so this costs O(batches x streams), not O(images).
    """
    left = [int(n) for n in lengths]
    streams = len(left)
    cursor = 0  # the stream whose turn is next
    while any(left):
        counts = [0] * streams
        need = batch_size
        while need and any(left):
            alive = [v for v in range(streams) if left[v]]
            if cursor == 0 and need >= len(alive):
                rounds = min(need // len(alive), min(left[v] for v in alive))
                for v in alive:
                    counts[v] += rounds
                    left[v] -= rounds
                need -= rounds * len(alive)
                continue
            while not left[cursor]:
                cursor = (cursor + 1) % streams
            counts[cursor] += 1
            left[cursor] -= 1
            need -= 1
            cursor = (cursor + 1) % streams
            if not any(left[cursor:]):
                cursor = 0  # the round is over: the next one starts at the first stream
        yield counts


def consumed(lengths: Sequence[int], batch_size: int, batches: int) -> list[int]:
    """Images of each stream the first `batches` global batches of the epoch took."""
    total = [0] * len(lengths)
    for g, counts in enumerate(step_counts(lengths, batch_size)):
        if g >= batches:
            break
        total = [t + c for t, c in zip(total, counts, strict=True)]
    return total
