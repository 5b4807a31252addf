"""A custom class list keeps its ids, names and labels through prompter, generator, scorer
and trainer (synscale.classes is the one resolver; the jobs carry the classes).

Before the domain core, the trainer received `class_set=""` for a custom study and read it
as Fashion-MNIST; this test follows one study's classes through the production code of
each stage: the prompter's job planner, the generator's JobRunner writing real shards, the
scorer's cell plan, the analyzer's run plan and the trainer's training-set plan.
"""

from __future__ import annotations

from pathlib import Path

from synscale import plan
from synscale.cells import Cell
from synscale.store.file import FileStore
from synscale.study import parse_study
from synscale_generator.engine import Engine, JobRunner
from synscale_prompter.classes import class_set_for_spec
from synscale_prompter.worker import JobPlanner
from synscale_scorer.plan import plan_from_spec
from synscale_trainer import classes as trainer_classes
from synscale_trainer.plan import plan_training_set

from .conftest import STANDIN

STUDY = """
name: custom-flow
classes:
  set: custom
  custom:
    - {id: zebra, name: striped zebra}
    - {id: apple, name: red apple}
    - {id: kettle, name: tea kettle}
generators: [{name: gen, backend: embedded, steps: 2, batch_size: 4, cfg: [2.0]}]
strategies: [classname]
images_per_class: [2, 3]
real: {set: none}
evaluation: {id: fashion-mnist-test, ood: []}
"""
IDS = ("zebra", "apple", "kettle")  # written order: the label order of a custom list
NAMES = ("striped zebra", "red apple", "tea kettle")


def test_custom_classes_keep_their_labels_through_every_stage(tmp_path: Path, one_torch_thread: None) -> None:
    spec = parse_study(STUDY)
    store = FileStore(tmp_path / "store", "flow")

    # prompter: one job per class chunk, each carrying the class and its label
    planner = JobPlanner(spec, class_set_for_spec(spec.classes), store.bucket, shard_size=3)
    jobs = [job for _, job in planner.jobs()]
    assert [(j.job.class_id, j.class_info.name, j.class_info.index) for j in jobs] == [
        (cid, name, label) for label, (cid, name) in enumerate(zip(IDS, NAMES, strict=True))]
    assert all(p.text == j.class_info.name for j in jobs for p in j.prompts)

    # generator: the production JobRunner writes each class's shard (tiny random model)
    runner = JobRunner(store, Engine("cpu"))
    for job in jobs:
        job.generator.backend = STANDIN
    written = [p.shard.key for p in runner.run(jobs) if p.shard is not None and p.shard.key]
    runner.close()
    assert sorted(k.split("/")[-2] for k in written) == sorted(IDS)

    # scorer: the cell plan labels the classes in the same order
    cell = Cell("gen", 2.0, "classname")
    cell_plan = plan_from_spec(spec, spec.study_id, cell)
    assert (cell_plan.class_ids, cell_plan.class_names, cell_plan.class_set) == (IDS, NAMES, "custom")
    assert [cell_plan.label_of(c) for c in IDS] == [0, 1, 2]

    # analyzer -> trainer: the job carries the classes; the trainer does not guess a set
    run = next(r for r in plan.plan_runs(spec, store.bucket) if r.n == 3)
    assert run.job.class_set == "custom"
    run_classes = trainer_classes.for_job(run.job)
    assert (run_classes.name, run_classes.ids, run_classes.names) == ("custom", IDS, NAMES)
    training = plan_training_set(store, study_id=spec.study_id, cells=[cell], classes=run_classes,
                                 n_per_class=3, real_per_class=0)
    labels = {s.key.split("/")[-2]: s.label for s in training.shard_sources}
    assert labels == {"zebra": 0, "apple": 1, "kettle": 2}
    assert training.per_class == dict.fromkeys(IDS, 3)
