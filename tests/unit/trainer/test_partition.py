"""The canonical-stream layout: global batches independent of the world size, ranks disjoint."""

from __future__ import annotations

import pytest

from synscale.errors import InvalidInput
from synscale_trainer import partition


def _naive(lengths: list[int], batch: int) -> list[list[int]]:
    """Image-by-image round-robin over the non-empty streams, cut into batches."""
    left, order = list(lengths), []
    while any(left):
        for v in range(len(left)):
            if left[v]:
                order.append(v)
                left[v] -= 1
    out = []
    for g in range(0, len(order), batch):
        counts = [0] * len(lengths)
        for v in order[g : g + batch]:
            counts[v] += 1
        out.append(counts)
    return out


@pytest.mark.parametrize(
    ("lengths", "batch"),
    [
        ([10, 10, 10, 10], 8),
        ([13, 4, 0, 9], 5),
        ([1, 50, 2], 7),
        ([3], 4),
        ([40, 38, 41, 7, 0, 12, 5, 9], 16),
    ],
)
def test_step_counts_is_the_round_robin_of_the_streams(lengths: list[int], batch: int) -> None:
    counts = list(partition.step_counts(lengths, batch))
    assert counts == _naive(lengths, batch)
    assert [sum(c[v] for c in counts) for v in range(len(lengths))] == lengths
    assert all(sum(c) == batch for c in counts[:-1])


def test_consumed_is_the_prefix_sum_of_the_batches() -> None:
    lengths = [13, 4, 0, 9]
    counts = _naive(lengths, 5)
    assert partition.consumed(lengths, 5, 0) == [0, 0, 0, 0]
    assert partition.consumed(lengths, 5, 2) == [a + b for a, b in zip(counts[0], counts[1], strict=True)]
    assert partition.consumed(lengths, 5, 99) == lengths


@pytest.mark.parametrize("world", [1, 2, 3, 4, 8])
def test_ranks_and_workers_split_the_streams_disjointly(world: int) -> None:
    owned = [partition.owned_streams(8, r, world) for r in range(world)]
    assert sorted(v for o in owned for v in o) == list(range(8))
    for o in owned:
        split = [partition.worker_streams(o, w, 2) for w in range(2)]
        assert sorted(v for s in split for v in s) == o


def test_more_ranks_than_streams_is_refused_naming_the_field() -> None:
    with pytest.raises(InvalidInput, match="data_streams"):
        partition.owned_streams(4, 0, 5)
