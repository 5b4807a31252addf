"""Dataset assembly: nested subsets, the split over cells, and clear errors before compute."""

from __future__ import annotations

import pytest

from synscale import classes as core
from synscale import layout
from synscale.errors import InvalidInput
from synscale.store.file import FileStore
from synscale_trainer.fixtures import write_fake_cell
from synscale_trainer.plan import Cell, ShardSource, plan_training_set, split_evenly

from .conftest import STUDY

FAKE2 = Cell("fake", 2.0, "classname")
FAKE4 = Cell("fake", 4.0, "classname")


def plan(store: FileStore, n: int, cells: list[Cell] | None = None, real: int = 0):  # type: ignore[no-untyped-def]
    return plan_training_set(
        store,
        study_id=STUDY,
        cells=[FAKE2] if cells is None else cells,
        classes=core.fashion_mnist(),
        n_per_class=n,
        real_per_class=real,
    )


def test_first_n_per_class_in_index_order(cell_store: FileStore) -> None:
    p = plan(cell_store, 12)
    assert p.n_images == 120
    assert set(p.per_class.values()) == {12}
    tshirt = sorted((s for s in p.shard_sources if s.label == 0), key=lambda s: s.lo)
    # shards of 8: images 0-7 from the first shard, 8-11 from the second (a partial read)
    assert [(s.lo, s.hi) for s in tshirt] == [(0, 8), (8, 12)]
    assert tshirt[0].key == layout.shard_key(STUDY, "fake", 2.0, "classname", "tshirt", 0, 8)
    assert all(len(s.sha256) == 64 for s in p.shard_sources)


@pytest.mark.parametrize("n", [1, 5, 8, 13])
def test_subsets_are_nested(cell_store: FileStore, n: int) -> None:
    small, big = (
        plan(cell_store, n, [FAKE2, FAKE4], real=n),
        plan(cell_store, 2 * n, [FAKE2, FAKE4], real=2 * n),
    )
    assert small.members() < big.members()
    assert small.n_images == 10 * 2 * n and big.n_images == 10 * 4 * n


def test_n_is_split_evenly_over_cells(cell_store: FileStore) -> None:
    assert split_evenly(7, 3) == [3, 2, 2]
    p = plan(cell_store, 7, [FAKE2, FAKE4])
    first_cell = sum(s.count for s in p.shard_sources if s.label == 0 and "/cfg2/" in s.key)
    assert first_cell == 4  # the first cell gets the odd image
    assert p.per_class["tshirt"] == 7


def test_real_images_are_the_first_k_of_each_class(store: FileStore) -> None:
    from synscale.datasets import fashion_mnist

    p = plan_training_set(
        store, study_id=STUDY, cells=[], classes=core.fashion_mnist(), n_per_class=0, real_per_class=300
    )
    assert p.n_images == 3000
    first = fashion_mnist.load("train").per_class_indices()[3][:300]
    refs = [r for s in p.sources if s.label == 3 for r in s.refs]  # type: ignore[union-attr]
    assert refs == [int(i) for i in first]
    assert max(len(s.refs) for s in p.sources) == 256  # type: ignore[union-attr]


def test_overlapping_shards_are_not_counted_twice(store: FileStore) -> None:
    write_fake_cell(store, STUDY, per_class=16, shard_size=8)
    write_fake_cell(store, STUDY, per_class=16, shard_size=16)  # same images, one bigger shard
    p = plan(store, 16)
    assert p.per_class["bag"] == 16
    assert len(p.members()) == 160


def test_n_larger_than_the_cell_names_the_field(cell_store: FileStore) -> None:
    with pytest.raises(
        InvalidInput, match=r"n_per_class: cell fake\|cfg=2\|classname has 30 images of class 'tshirt'; 31"
    ):
        plan(cell_store, 31)


def test_empty_cell_is_an_error(cell_store: FileStore) -> None:
    with pytest.raises(InvalidInput, match=r"cells: cell fake\|cfg=7\|classname has no shards"):
        plan(cell_store, 5, [Cell("fake", 7.0, "classname")])


def test_missing_class_counts_as_too_few_images(store: FileStore) -> None:
    write_fake_cell(store, STUDY, per_class=10, classes=("tshirt", "bag"))
    with pytest.raises(InvalidInput, match="has 0 images of class 'trouser'"):
        plan(store, 5)


def test_real_request_beyond_the_dataset(store: FileStore) -> None:
    with pytest.raises(InvalidInput, match="real_per_class: Fashion-MNIST train has 6000 images"):
        plan_training_set(
            store, study_id=STUDY, cells=[], classes=core.fashion_mnist(), n_per_class=0, real_per_class=6001
        )


@pytest.mark.parametrize(
    ("n", "real", "cells", "field"),
    [
        (0, 0, [], "n_per_class"),
        (5, 0, [], "cells"),
        (0, 5, [FAKE2], "n_per_class"),
        (-1, 0, [FAKE2], "n_per_class"),
    ],
)
def test_inconsistent_sizes(cell_store: FileStore, n: int, real: int, cells: list[Cell], field: str) -> None:
    with pytest.raises(InvalidInput) as err:
        plan(cell_store, n, cells, real)
    assert err.value.field == field


def test_cell_parse() -> None:
    assert Cell.parse("embedded/cfg7.5/classname") == Cell("embedded", 7.5, "classname")
    assert Cell.parse("sd/2/clip_templates") == Cell("sd", 2.0, "clip_templates")
    for bad in ("sd/2", "sd/x/classname", "//"):
        with pytest.raises(InvalidInput, match="cells"):
            Cell.parse(bad, field="cells")  # as `synscale train --cells` parses them


def test_shard_source_identity() -> None:
    s = ShardSource("k/a.tar", "0" * 64, 10, 1, 0, 4)
    assert s.count == 4 and s.uid == "k/a.tar#0-4"


def test_restricted_class_set_labels_in_the_set_order(store: FileStore) -> None:
    """One label order (synscale.classes): a restricted set keeps the set's order, whatever
    order its ids are listed in — the prompter, scorer and analyzer label the same way."""
    write_fake_cell(store, STUDY, per_class=6, classes=("tshirt", "bag"))  # a study with classes.ids
    subset = core.fashion_mnist().select(["bag", "tshirt"])
    assert subset.names == ("T-shirt", "bag") and subset.restricted
    p = plan_training_set(
        store, study_id=STUDY, cells=[FAKE2], classes=subset, n_per_class=4, real_per_class=3
    )
    assert p.per_class == {"bag": 7, "tshirt": 7}
    assert {s.label for s in p.shard_sources if "/bag/" in s.key} == {1}
    from synscale.datasets import fashion_mnist

    labels = fashion_mnist.load("train").labels
    real = [(s.label, r) for s in p.sources if not isinstance(s, ShardSource) for r in s.refs]
    assert {(label, int(labels[r])) for label, r in real} == {(1, 8), (0, 0)}  # bag is Fashion label 8
    with pytest.raises(InvalidInput, match=r"class_ids\[1\]: unknown class 'cat' in class set"):
        core.fashion_mnist().select(["tshirt", "cat"])


def test_a_gap_in_a_class_is_not_covered(store: FileStore) -> None:
    """Images 0..N-1 or nothing (synscale.layout's one rule): shards [0, 10) and [20, 30)
    hold 20 images but only 10 from index 0, so a run of 20 per class is refused."""
    keys = write_fake_cell(store, STUDY, per_class=30, shard_size=10, classes=("bag",))
    store.delete(next(k for k in keys if k.endswith("000000010-000010.tar")))
    bag = core.fashion_mnist().select(["bag"])
    ok = plan_training_set(store, study_id=STUDY, cells=[FAKE2], classes=bag, n_per_class=10,
                           real_per_class=0)
    assert {(s.lo, s.hi) for s in ok.shard_sources} == {(0, 10)}
    with pytest.raises(InvalidInput, match=r"has 10 images of class 'bag'; 20 are needed"):
        plan_training_set(store, study_id=STUDY, cells=[FAKE2], classes=bag, n_per_class=20, real_per_class=0)


def test_a_per_class_allocation_takes_each_class_its_own_count(cell_store: FileStore) -> None:
    counts = {cid: 1 + i for i, cid in enumerate(core.fashion_mnist().ids)}
    p = plan_training_set(cell_store, study_id=STUDY, cells=[FAKE2, FAKE4], classes=core.fashion_mnist(),
                          n_per_class=5, real_per_class=0, class_n=counts)
    assert p.per_class == counts
    assert p.n_images == sum(counts.values())
    tshirt = [s for s in p.shard_sources if s.label == 0]
    assert sum(s.count for s in tshirt) == 1  # split over the cells: 1 + 0


def test_an_allocation_naming_an_unknown_class_is_refused(cell_store: FileStore) -> None:
    counts = dict.fromkeys(core.fashion_mnist().ids, 2) | {"cat": 3}
    with pytest.raises(InvalidInput, match=r"class_n_per_class.*unknown: \['cat'\]"):
        plan_training_set(cell_store, study_id=STUDY, cells=[FAKE2], classes=core.fashion_mnist(),
                          n_per_class=2, real_per_class=0, class_n=counts)
