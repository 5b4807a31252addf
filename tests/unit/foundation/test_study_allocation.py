"""A study file takes a per-class allocation (`images_per_class: [.., {class id: images}]`).

The planner writes one (docs/planner.md); the core plan must turn it into runs whose
training jobs carry the per-class counts, generate enough images for its largest class,
and name an unknown class clearly.
"""

from __future__ import annotations

import pytest

from synscale import plan
from synscale.classes import fashion_mnist
from synscale.errors import InvalidInput
from synscale.study import parse_study

IDS = fashion_mnist().ids
ALLOC = {cid: 8 + 4 * i for i, cid in enumerate(IDS)}  # 8..44, mean 26


def _spec(alloc: dict[str, int] | None = None, sizes: str = "[8, 16]"):  # type: ignore[no-untyped-def]
    entry = ", {" + ", ".join(f"{k}: {v}" for k, v in (alloc or ALLOC).items()) + "}"
    return parse_study(f"""
name: alloc
generators: [{{name: embedded, cfg: [1, 2]}}]
strategies: [classname]
images_per_class: {sizes[:-1]}{entry}]
real: {{set: fashion-mnist, per_class: [8]}}
training: [{{name: cnn, seeds: [0, 1]}}]
""")


def test_an_allocation_plans_one_run_per_cell_and_seed_with_its_counts() -> None:
    spec = _spec()
    assert spec.sizes == [8, 16] and spec.allocations == [ALLOC]
    assert spec.max_images_per_class == 44
    runs = plan.plan_runs(spec, "bucket")
    allocated = [r for r in runs if r.class_n]
    uniform = [r for r in runs if r.source == "synthetic" and not r.class_n]
    assert len(allocated) == 2 * 2 and len(uniform) == 2 * 2 * 2  # cells x seeds (x sizes)
    for r in allocated:
        assert dict(r.job.class_n_per_class) == ALLOC
        assert r.class_n == tuple(ALLOC.items())  # label order
        assert r.n == 26 and r.job.n_per_class == 26 and r.max_class_n == 44
        assert r.allocation == plan.allocation_name(ALLOC) and r.allocation.startswith("alloc-")
    assert len({r.run_id for r in allocated}) == 4
    assert all(not r.job.class_n_per_class for r in uniform)


def test_uniform_runs_keep_their_ids_when_an_allocation_is_added() -> None:
    """Adding the field must not rename the runs of studies written before it."""
    without = parse_study("""
name: alloc
generators: [{name: embedded, cfg: [1]}]
images_per_class: [8]
""")
    job = plan.plan_runs(without, "b")[0].job
    assert "class_n_per_class" not in plan.run_identity(job)


def test_generation_covers_the_largest_allocated_class() -> None:
    spec = _spec()
    chunks = list(plan.chunks(spec, plan.study_classes(spec), shard_size=64))
    assert {c.count for c in chunks} == {44}  # every class to the largest count, one chunk each


def test_an_unknown_class_is_named_with_the_id_of_a_name() -> None:
    bad = {("T-shirt" if k == "tshirt" else k): v for k, v in ALLOC.items()}
    with pytest.raises(InvalidInput, match=r"images_per_class\[2\].*unknown class\(es\) 'T-shirt' "
                                           r"\(its id is 'tshirt'\)"):
        plan.plan_runs(_spec(bad), "b")


def test_a_missing_class_is_named() -> None:
    partial = {k: v for k, v in ALLOC.items() if k != "bag"}
    with pytest.raises(InvalidInput, match="missing: bag"):
        plan.plan_runs(_spec(partial), "b")


@pytest.mark.parametrize(("entry", "message"), [
    ("{}", "allocation 0 is empty"),
    ("{tshirt: 0}", "images per class must be in 1.."),
])
def test_bad_allocations_are_refused_at_parse_time(entry: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_study(f"name: x\ngenerators: [{{name: embedded}}]\nimages_per_class: [8, {entry}]\n")
