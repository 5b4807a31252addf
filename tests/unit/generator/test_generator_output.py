"""Jobs become shards at deterministic keys; existing intact shards are re-announced, not redone."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from synscale import ids, layout
from synscale.shards import decode_png, iter_shard
from synscale.store.file import FileStore
from synscale.v1 import generator_pb2
from synscale_generator.engine import Engine, JobRunner
from synscale_generator.output import META_KEYS, plan_shards

Job = Callable[..., generator_pb2.GenerationJob]


class CountingStore(FileStore):
    """A FileStore that counts object writes."""

    puts = 0

    def put(self, key, data, **kw):  # type: ignore[no-untyped-def,override]
        self.puts += 1
        return super().put(key, data, **kw)


def runner_for(store: FileStore, events: list[generator_pb2.ShardReady], **kw: Any) -> JobRunner:
    return JobRunner(store, Engine("cpu", default_batch_size=4), announce=events.append, **kw)


def test_job_writes_one_shard_with_keys_seeds_and_meta(tmp_path: Path, job_for: Job) -> None:
    store, events = FileStore(tmp_path, "b"), []  # type: ignore[var-annotated]
    job = job_for("bag", n=3, cfg=2.0, class_index=8, seed_start=6)
    progress = list(runner_for(store, events).run([job]))
    key = layout.shard_key("study-t", "gen", 2.0, "classname", "bag", 6, 3)
    assert [e.shard.key for e in events] == [key]
    ref = events[0].shard
    assert (ref.count, ref.bucket, ref.job.seed_start, ref.job.seed_count, events[0].reannounced) == (
        3, "b", 6, 3, False)
    assert progress[-1].done == progress[-1].total == 3 and progress[-1].shard == ref
    samples = list(iter_shard(store.get(key)))
    assert [s.key for s in samples] == [ids.sample_key("bag", i) for i in (6, 7, 8)]
    for i, sample in enumerate(samples):
        assert tuple(sorted(sample.meta)) == tuple(sorted(META_KEYS))
        assert sample.meta["seed"] == ids.image_seed("study-t", "gen", "classname", "bag", 6 + i)
        assert (sample.meta["index"], sample.meta["class_index"], sample.meta["cfg"]) == (6 + i, 8, 2.0)
        assert sample.meta["prompt"] == job.prompts[i].text
        decode_png(sample.png, mode="L", size=(32, 32))
    assert store.stat(key).sha256 == ref.sha256  # type: ignore[union-attr]


def test_redelivered_job_reannounces_and_writes_nothing(tmp_path: Path, job_for: Job) -> None:
    store, events = CountingStore(tmp_path, "b"), []  # type: ignore[var-annotated]
    runner = runner_for(store, events)
    job = job_for("coat", n=5)
    list(runner.run([job]))
    assert store.puts == 1
    before = store.get(events[0].shard.key)
    progress = list(runner.run([job]))
    assert store.puts == 1, "an intact shard was written again"
    assert [(e.shard.key, e.reannounced) for e in events] == [(events[0].shard.key, False),
                                                             (events[0].shard.key, True)]
    assert events[1].shard.sha256 == events[0].shard.sha256
    assert [p.reannounced for p in progress] == [True]
    assert store.get(events[0].shard.key) == before


def test_damaged_or_foreign_shard_is_regenerated_to_the_same_bytes(tmp_path: Path, job_for: Job) -> None:
    store, events = CountingStore(tmp_path, "b"), []  # type: ignore[var-annotated]
    runner = runner_for(store, events)
    job = job_for("dress", n=2)
    list(runner.run([job]))
    key, good = events[0].shard.key, store.get(events[0].shard.key)
    damaged = bytearray(good)
    png_start = good.index(b"IDAT") + 8
    damaged[png_start:png_start + 16] = bytes(16)  # pixels zeroed: the PNG checksum fails
    truncated = good[: good.index(b"dress_000000001.png") + 700]  # inside the 2nd sample's PNG
    for corrupt in (truncated, bytes(damaged)):
        (store.base / key).write_bytes(corrupt)  # damaged behind the store's back
        list(runner.run([job]))
        assert not events[-1].reannounced
        assert store.get(key) == good
    store.put(key, good, metadata={"synscale-inputs": "something else"})  # same key, other inputs
    list(runner.run([job]))
    assert not events[-1].reannounced and store.get(key) == good


def test_shard_bytes_are_deterministic_across_runs_and_batch_sizes(tmp_path: Path, job_for: Job) -> None:
    job = job_for("sandal", n=5)
    first, second = FileStore(tmp_path / "1", "b"), FileStore(tmp_path / "2", "b")
    list(runner_for(first, []).run([job]))
    list(JobRunner(second, Engine("cpu", default_batch_size=4, png_workers=1)).run([job]))
    key = plan_shards(job)[0].key
    assert first.get(key) == second.get(key)


def test_batches_span_jobs_and_classes(tmp_path: Path, job_for: Job) -> None:
    from synscale_generator.backends import ModelCache
    from synscale_generator.validation import settings_for

    jobs = [job_for("bag", n=3), job_for("coat", n=3), job_for("shirt", n=2)]
    models = ModelCache()
    backend = models.get(settings_for(jobs[0].generator, "cpu"))
    calls: list[list[str]] = []
    original = backend.generate

    def recording(prompts, *args, **kw):  # type: ignore[no-untyped-def]
        calls.append(list(prompts))
        return original(prompts, *args, **kw)

    backend.generate = recording  # type: ignore[method-assign]
    events: list[generator_pb2.ShardReady] = []
    list(JobRunner(FileStore(tmp_path, "b"), Engine("cpu"), models, announce=events.append).run(jobs))
    assert len(calls) == 2 and len(calls[0]) == 4  # spec batch_size 4; 8 images in 2 calls
    assert {p.split()[4] for p in calls[0]} == {"bag", "coat"}
    assert [e.shard.job.class_id for e in events] == ["bag", "coat", "shirt"]


def test_shard_size_splits_a_job_into_ranges(tmp_path: Path, job_for: Job) -> None:
    store, events = FileStore(tmp_path, "b"), []  # type: ignore[var-annotated]
    list(runner_for(store, events).run([job_for("bag", n=5, shard_size=2)]))
    assert [(e.shard.job.seed_start, e.shard.count, e.shard.shard_index) for e in events] == [
        (0, 2, 0), (2, 2, 1), (4, 1, 2)]
    assert events[2].shard.key == layout.shard_key("study-t", "gen", 2.0, "classname", "bag", 4, 1)


def test_a_study_job_is_not_padded_beyond_the_study_job_size(tmp_path: Path, job_for: Job, spec_for) -> None:  # type: ignore[no-untyped-def]
    """A prompter job (shard_size set) samples at min(batch size, job size); others as asked."""
    runner = runner_for(FileStore(tmp_path, "b"), [])
    wide = spec_for(batch_size=256)
    job = job_for("bag", n=3, spec=wide, shard_size=4)  # the last, short chunk of a study
    assert runner.job_batch_size(job) == 4
    list(runner.run([job]))
    assert runner.engine.last_batch_size == 4  # padded to the study's job size, not to 256
    assert runner.job_batch_size(job_for("bag", n=3, spec=wide)) == 256  # no job size: as asked
    assert runner.job_batch_size(job_for("bag", n=5, spec=wide, shard_size=2)) == 256  # several shards
    assert runner.job_batch_size(job_for("bag", n=3, spec=spec_for(batch_size=0), shard_size=8)) == 4


@pytest.mark.parametrize("cfgs", [(1.0, 4.0)])
def test_cfg_values_share_starting_noise_but_differ(
    tmp_path: Path, job_for: Job, cfgs: tuple[float, ...],
) -> None:
    store = FileStore(tmp_path, "b")
    runner = runner_for(store, [])
    keys = []
    for cfg in cfgs:
        job = job_for("bag", n=2, cfg=cfg)
        list(runner.run([job]))
        keys.append(plan_shards(job)[0].key)
    a, b = (list(iter_shard(store.get(k))) for k in keys)
    assert [s.meta["seed"] for s in a] == [s.meta["seed"] for s in b]  # paired across the CFG grid
    assert a[0].png != b[0].png
