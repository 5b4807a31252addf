"""The study's work as pure functions of its spec: cells, generation jobs, training runs.

Every service that needs to know "what does this study consist of" asks here, so the
prompter (which publishes the generation jobs), the analyzer (which waits for their
shards and launches the runs), the scorer (which checks a cell belongs to the study) and
the trainer (which names a run it is handed) can never disagree (docs/architecture.md,
"Domain core"). Nothing here does I/O; ids are digests of the fields that change what is
computed, so a restarted service plans exactly the same ids again.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from google.protobuf import json_format

from synscale import ids, layout
from synscale.cells import Cell
from synscale.classes import ClassDef, ClassSet, class_set_for_spec
from synscale.errors import InvalidInput
from synscale.study import GeneratorConfig, StudySpec, TrainingRecipe
from synscale.v1 import common_pb2, study_pb2, trainer_pb2

Source = Literal["real", "synthetic", "mixed"]
RUN_ID_TRANSIENT = ("run_id", "bucket")  # where a run is stored, not what it computes


# ----------------------------------------------------------------------- cells
def cells_of(spec: StudySpec) -> list[Cell]:
    """Every (generator, CFG, strategy) of the study, in spec order."""
    return [Cell(g.name, float(c), s) for g in spec.generators for s in spec.strategies for c in g.cfg]


def study_classes(spec: StudySpec) -> ClassSet:
    """The study's classes in label order (synscale.classes; no WordNet fields)."""
    return class_set_for_spec(spec.classes)


def find_cell(spec: StudySpec, cell: Cell, study_id: str = "") -> tuple[GeneratorConfig, Cell]:
    """The generator config of a cell of this study; InvalidInput naming what does not match.

    CFG values are matched exactly: a cell comes from the spec (`cells_of`) or from a key
    written from it, and `ids.format_cfg` round-trips a float without loss.
    """
    study_id = study_id or spec.study_id
    gens = {g.name: g for g in spec.generators}
    if cell.generator not in gens:
        raise InvalidInput("cell.generator", f"{cell.generator!r} is not a generator of study {study_id}")
    gen = gens[cell.generator]
    if float(cell.cfg) not in [float(c) for c in gen.cfg]:
        raise InvalidInput("cell.cfg", f"{cell.cfg:g} is not in {cell.generator}'s CFG grid {gen.cfg}")
    if cell.strategy not in spec.strategies:
        raise InvalidInput("cell.strategy", f"{cell.strategy!r} is not a strategy of study {study_id}")
    return gen, cell


# ------------------------------------------------------------- generation jobs
def generator_spec(g: GeneratorConfig) -> study_pb2.GeneratorSpec:
    """The proto form of a study's generator; typed settings travel in their own fields."""
    return study_pb2.GeneratorSpec(
        name=g.name, backend=g.backend, model_path=g.model_path, resolution=g.resolution,
        steps=g.steps, scheduler=g.scheduler, dtype=g.dtype, batch_size=g.batch_size,
        cfg_grid=list(g.cfg), negative_prompt=g.negative_prompt, options=dict(g.options),
        eta=float(g.eta),
    )


def identity_fields(identity: common_pb2.JobIdentity) -> dict[str, object]:
    """The flat mapping whose ids.job_id is a generation job's key."""
    return {
        "study_id": identity.study_id, "generator": identity.cell.generator,
        "cfg": float(identity.cell.cfg), "strategy": identity.cell.strategy,
        "class_id": identity.class_id, "seed_start": int(identity.seed_start),
        "seed_count": int(identity.seed_count),
    }


def shard_key_of(identity: common_pb2.JobIdentity) -> str:
    """Where the generator writes this job's shard (one generation job is one shard)."""
    return layout.shard_key(identity.study_id, identity.cell.generator, identity.cell.cfg,
                            identity.cell.strategy, identity.class_id, identity.seed_start,
                            identity.seed_count)


def job_key(identity: common_pb2.JobIdentity) -> str:
    """The bus key of a generation job (spreads jobs over partitions, stable on redelivery)."""
    return ids.job_id(identity_fields(identity))


@dataclass(frozen=True)
class Chunk:
    """Images [start, start + count) of one (generator, strategy, class): one job per CFG."""

    generator: GeneratorConfig
    strategy: str
    cls: ClassDef
    label: int  # the class's label in the study's set
    start: int
    count: int

    def identities(self, study_id: str) -> Iterator[common_pb2.JobIdentity]:
        for cfg in self.generator.cfg:
            yield common_pb2.JobIdentity(
                study_id=study_id,
                cell=common_pb2.CellId(generator=self.generator.name, cfg=cfg, strategy=self.strategy),
                class_id=self.cls.id, seed_start=self.start, seed_count=self.count)


def chunks(spec: StudySpec, classes: ClassSet, shard_size: int) -> Iterator[Chunk]:
    """generator x strategy x class x chunk of `shard_size`, in that order.

    Images 0..max(images_per_class)-1 of every class are cut into chunks; the prompts of a
    chunk are shared by every CFG value, so cells differ only by what the study varies.
    """
    if shard_size < 1:
        raise InvalidInput("shard_size", f"must be >= 1, got {shard_size}")
    total = spec.max_images_per_class
    for g in spec.generators:
        for strategy in spec.strategies:
            for label, cls in enumerate(classes):
                for start in range(0, total, shard_size):
                    yield Chunk(g, strategy, cls, label, start, min(shard_size, total - start))


def job_count(spec: StudySpec, n_classes: int, shard_size: int) -> int:
    """How many generation jobs `chunks` x CFG makes."""
    per_class = -(-spec.max_images_per_class // shard_size)
    cells = sum(len(g.cfg) for g in spec.generators) * len(spec.strategies)
    return cells * n_classes * per_class


# --------------------------------------------------------------- training runs
@dataclass(frozen=True)
class PlannedRun:
    """One training run; `cell`/`n` say which data must exist before it can start."""

    run_id: str
    source: Source
    recipe: TrainingRecipe
    seed: int
    n: int  # synthetic images per class (real per class for real-only runs)
    real_per_class: int
    cell: Cell | None
    job: trainer_pb2.TrainingJob
    # A per-class allocation (class id, images) in label order; empty for a uniform run of n.
    class_n: tuple[tuple[str, int], ...] = ()

    @property
    def max_class_n(self) -> int:
        """The most images any class of the run needs (what generation must have covered)."""
        return max((n for _, n in self.class_n), default=self.n)

    @property
    def allocation(self) -> str:
        """A short, stable name of the run's allocation ("" for a uniform run)."""
        return allocation_name(dict(self.class_n)) if self.class_n else ""


def allocation_name(counts: dict[str, int]) -> str:
    """`alloc-<digest>`: the same per-class counts name the same allocation in every service."""
    return f"alloc-{ids.digest(sorted(counts.items()), length=8)}"


def check_allocation(alloc: dict[str, int], classes: ClassSet, field: str) -> tuple[tuple[str, int], ...]:
    """The allocation in label order; InvalidInput naming an unknown or a missing class."""
    unknown = sorted(set(alloc) - set(classes.ids))
    if unknown:
        by_name = {name: cid for cid, name in zip(classes.ids, classes.names, strict=True)}
        hints = [f"{k!r} (its id is {by_name[k]!r})" if k in by_name else repr(k) for k in unknown]
        raise InvalidInput(field, f"unknown class(es) {', '.join(hints)}; the study's class ids are "
                                  f"{', '.join(classes.ids[:12])}{' …' if len(classes) > 12 else ''}")
    missing = [cid for cid in classes.ids if cid not in alloc]
    if missing:
        raise InvalidInput(field, "an allocation must give every class its images; "
                                  f"missing: {', '.join(missing[:12])}")
    return tuple((cid, int(alloc[cid])) for cid in classes.ids)


def eval_sets(spec: StudySpec) -> list[str]:
    return [spec.evaluation.id, *[s for s in spec.evaluation.ood if s != spec.evaluation.id]]


def run_identity(job: trainer_pb2.TrainingJob) -> dict[str, object]:
    """The fields of a training job that define what a run computes (not where it is stored)."""
    data = json_format.MessageToDict(job, preserving_proto_field_name=True)
    for transient in RUN_ID_TRANSIENT:
        data.pop(transient, None)
    data.setdefault("kind", "supervised")  # the default, spelled out or not, is one identity
    return data


def source_of(job: trainer_pb2.TrainingJob) -> Source:
    if not job.cells:
        return "real"
    return "mixed" if job.real_per_class > 0 else "synthetic"


def run_id(job: trainer_pb2.TrainingJob) -> str:
    """`<source>-<recipe>-n<N>-<digest>`: readable in listings, unique to what is computed.

    The one run-id function: the analyzer names every planned run with it, and the trainer
    names a job that arrives without one (`synscale train`) the same way.
    """
    try:
        recipe = json.loads(job.recipe_json).get("name", "") if job.recipe_json else ""
    except (ValueError, AttributeError):
        recipe = ""
    return _format_run_id(job, str(recipe or ""), run_identity(job))


def _format_run_id(job: trainer_pb2.TrainingJob, recipe: str, identity: dict[str, object]) -> str:
    label = ids.safe_component(str(recipe or job.arch or job.kind or "run"), 20)
    n = job.n_per_class if job.cells else job.real_per_class
    return f"{source_of(job)}-{label}-n{n}-{ids.job_id(identity)[:16]}"


@dataclass(frozen=True)
class _Classes:
    """A study's classes as every planned job carries them, built once per plan.

    With 1000 classes and 2048 runs, building the ClassInfo messages and their dict form
    per run made `plan_runs` (and so every analyzer rebuild) cost runs × classes of
    protobuf-to-JSON conversion; the identity is the same either way.
    """

    infos: tuple[common_pb2.ClassInfo, ...]
    as_dicts: tuple[dict[str, object], ...]

    @classmethod
    def of(cls, classes: ClassSet) -> _Classes:
        infos = tuple(common_pb2.ClassInfo(**info) for info in classes.infos())
        return cls(infos, tuple(json_format.MessageToDict(i, preserving_proto_field_name=True)
                                for i in infos))


def _run(spec: StudySpec, bucket: str, classes: ClassSet, recipe: TrainingRecipe, seed: int,
         source: Source, n: int, real: int, cell: Cell | None, shared: _Classes,
         class_n: tuple[tuple[str, int], ...] = ()) -> PlannedRun:
    job = trainer_pb2.TrainingJob(
        class_n_per_class=dict(class_n),
        study_id=spec.study_id, kind=recipe.kind, arch=recipe.arch,
        cells=[cell.proto()] if cell else [], n_per_class=n if source != "real" else 0,
        real_per_class=real, seed=seed, eval_sets=eval_sets(spec),
        recipe_json=recipe.recipe_json(), bucket=bucket, class_set=spec.classes.set,
        real_path=spec.real.path, eval_limit=int(spec.evaluation.limit),
        class_ids=list(classes.ids) if classes.restricted else [],
    )
    # = run_id(job) once the classes are in, without converting them again for every run
    identity = run_identity(job)
    if shared.infos:
        identity["classes"] = list(shared.as_dicts)
    job.run_id = _format_run_id(job, recipe.name, identity)
    job.classes.extend(shared.infos)
    return PlannedRun(job.run_id, source, recipe, seed, n, real, cell, job, class_n)


def plan_runs(spec: StudySpec, bucket: str, classes: ClassSet | None = None) -> list[PlannedRun]:
    """Every run of the study: real-only, synthetic and mixed, per recipe and seed.

    An allocation ({class id: images} in images_per_class) is one synthetic run per cell,
    recipe and seed, trained on exactly those images per class; its n (the series' x-axis)
    is the mean per class, rounded.
    """
    names = [r.name for r in spec.training]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise InvalidInput(f"training[{i}].name", f"recipe names must be distinct; {name!r} repeats")
    classes = classes or study_classes(spec)
    positions = [i for i, e in enumerate(spec.images_per_class) if isinstance(e, dict)]
    allocations = [check_allocation(a, classes, f"images_per_class[{i}]")
                   for i, a in zip(positions, spec.allocations, strict=True)]
    shared = _Classes.of(classes)
    runs: list[PlannedRun] = []
    mix = spec.real.mix_real_per_class if spec.real.set != "none" else 0
    for recipe in spec.training:
        for seed in recipe.seeds:
            if spec.real.set != "none":
                runs += [_run(spec, bucket, classes, recipe, seed, "real", n, n, None, shared)
                         for n in spec.real.per_class]
            for cell in cells_of(spec):
                for n in spec.sizes:
                    runs.append(_run(spec, bucket, classes, recipe, seed, "synthetic", n, 0, cell, shared))
                    if mix > 0:
                        runs.append(_run(spec, bucket, classes, recipe, seed, "mixed", n, mix, cell, shared))
                for alloc in allocations:
                    mean_n = max(1, round(sum(n for _, n in alloc) / len(alloc)))
                    runs.append(_run(spec, bucket, classes, recipe, seed, "synthetic", mean_n, 0, cell,
                                     shared, alloc))
    seen: set[str] = set()
    for r in runs:
        if r.run_id in seen:
            raise InvalidInput("training", f"two runs share id {r.run_id}: are recipe names distinct?")
        seen.add(r.run_id)
    return runs
