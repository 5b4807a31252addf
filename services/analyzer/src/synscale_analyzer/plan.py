"""What a study will train, as a pure function of its spec: every run, its id and its trigger.

Runs are planned up front (not discovered) so that the analyzer knows when a study is
complete, and so that a restarted analyzer plans exactly the same run ids — it then only
has to look up which of them already have a result in the store.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from synscale import ids
from synscale.cells import Cell as CellKey
from synscale.errors import InvalidInput
from synscale.study import StudySpec, TrainingRecipe
from synscale.v1 import trainer_pb2
from synscale_analyzer.model import Source


@dataclass(frozen=True)
class PlannedRun:
    """One training run; `cell`/`n` say which data must exist before it can start."""

    run_id: str
    source: Source
    recipe: TrainingRecipe
    seed: int
    n: int  # synthetic images per class (real per class for real-only runs)
    real_per_class: int
    cell: CellKey | None
    job: trainer_pb2.TrainingJob


def cells_of(spec: StudySpec) -> list[CellKey]:
    return [CellKey(g.name, float(c), s) for g in spec.generators for s in spec.strategies for c in g.cfg]


@cache
def _fashion() -> tuple[tuple[str, str], ...]:
    from synscale.datasets.fashion_mnist import CLASSES

    return tuple(CLASSES)


def study_classes(spec: StudySpec) -> tuple[tuple[str, str], ...]:
    """(id, name) of the study's classes in label order.

    Fashion-MNIST and inline custom lists are resolved here (the shared dataset module is
    the one source of Fashion-MNIST ids). ImageNet and custom files belong to the prompter,
    which owns class sets; the analyzer asks it when it is installed.
    """
    c = spec.classes
    if c.set == "custom" and c.custom and not c.file:
        entries: tuple[tuple[str, str], ...] = tuple((e.id, e.name) for e in c.custom)
    elif c.set == "fashion-mnist":
        entries = _fashion()
    else:
        try:
            from synscale_prompter.classes import class_set_for_spec
        except ImportError:
            raise InvalidInput("classes", f"class set {c.set!r} needs synscale-prompter installed "
                               "to resolve") from None
        return tuple((x.id, x.name) for x in class_set_for_spec(c))
    if c.ids:
        known = dict(entries)
        missing = [i for i in c.ids if i not in known]
        if missing:
            raise InvalidInput("classes.ids", f"unknown ids {missing}; known: {', '.join(known)}")
        entries = tuple((i, known[i]) for i in c.ids)
    return entries


def eval_sets(spec: StudySpec) -> list[str]:
    return [spec.evaluation.id, *[s for s in spec.evaluation.ood if s != spec.evaluation.id]]


def _run(
    spec: StudySpec, bucket: str, recipe: TrainingRecipe, seed: int, source: Source, n: int,
    real: int, cell: CellKey | None,
) -> PlannedRun:
    job = trainer_pb2.TrainingJob(
        study_id=spec.study_id, kind=recipe.kind, arch=recipe.arch,
        cells=[cell.proto()] if cell else [], n_per_class=n if source != "real" else 0,
        real_per_class=real, seed=seed, eval_sets=eval_sets(spec),
        recipe_json=recipe.model_dump_json(), bucket=bucket,
        class_set=spec.classes.set if spec.classes.set in ("fashion-mnist", "imagenet") else "",
        real_path=spec.real.path, eval_limit=int(getattr(spec.evaluation, "limit", 0) or 0),
        class_ids=list(spec.classes.ids or []),
    )
    fields = {
        "study_id": spec.study_id, "source": source, "recipe": recipe.model_dump(mode="json"),
        "seed": seed, "cell": cell.name if cell else "", "n": n, "real": real,
        "eval_sets": list(job.eval_sets), "eval_limit": job.eval_limit,
    }
    run_id = f"{source}-{ids.safe_component(recipe.name, 20)}-n{n}-{ids.job_id(fields)[:16]}"
    job.run_id = run_id
    return PlannedRun(run_id, source, recipe, seed, n, real, cell, job)


def plan_runs(spec: StudySpec, bucket: str) -> list[PlannedRun]:
    """Every run of the study: real-only, synthetic and mixed, per recipe and seed."""
    names = [r.name for r in spec.training]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise InvalidInput(f"training[{i}].name", f"recipe names must be distinct; {name!r} repeats")
    runs: list[PlannedRun] = []
    mix = spec.real.mix_real_per_class if spec.real.set != "none" else 0
    for recipe in spec.training:
        for seed in recipe.seeds:
            if spec.real.set != "none":
                runs += [_run(spec, bucket, recipe, seed, "real", n, n, None) for n in spec.real.per_class]
            for cell in cells_of(spec):
                for n in spec.images_per_class:
                    runs.append(_run(spec, bucket, recipe, seed, "synthetic", n, 0, cell))
                    if mix > 0:
                        runs.append(_run(spec, bucket, recipe, seed, "mixed", n, mix, cell))
    seen: set[str] = set()
    for r in runs:
        if r.run_id in seen:
            raise InvalidInput("training", f"two runs share id {r.run_id}: are recipe names distinct?")
        seen.add(r.run_id)
    return runs
