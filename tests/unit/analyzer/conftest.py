"""Fixtures for the analyzer tests.

Hand-made analysis inputs with known scaling laws, and stand-ins for the four other
services that follow the data-flow conventions (deterministic shard keys, scores.json,
result.json, re-announcing finished work) so orchestration is tested on its own.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import numpy as np
import pytest

from synscale import codecs, ids, layout, plan
from synscale.assembly import Parts
from synscale.bus.base import Message
from synscale.embedded import EmbeddedRunner
from synscale.grpc_server import build_server
from synscale.plan import study_classes
from synscale.runtime import ServiceContext, Subscription
from synscale.shards import Sample, encode_png, iter_shard, write_shard
from synscale.study import StudySpec, parse_study
from synscale.v1 import common_pb2, generator_pb2, scorer_pb2, study_pb2, study_pb2_grpc, trainer_pb2
from synscale_analyzer.model import (
    AnalysisInput,
    CellScoreRecord,
    ClassScoreRecord,
    EvalRecord,
    RunRecord,
)
from synscale_analyzer.orchestrator import Orchestrator
from synscale_analyzer.servicer import bindings
from synscale_analyzer.worker import subscriptions

CLASSES = (("c0", "alpha"), ("c1", "beta"), ("c2", "gamma"), ("c3", "delta"), ("c4", "epsilon"))


def make_input(
    sizes: tuple[int, ...] = (8, 16, 32, 64, 128), seeds: tuple[int, ...] = (0, 1),
    cfgs: tuple[float, ...] = (1.0, 2.0, 4.0), strategies: tuple[str, ...] = ("classname", "clip_templates"),
    real_alpha: float = 0.5, noise: float = 0.03, mix: int = 16, seed: int = 0,
) -> AnalysisInput:
    """Synthetic cell (cfg c, strategy s) has α = 0.2 + 0.05·rank(c) + 0.04·rank(s).

    Per class k its slope is scaled by (0.6 + 0.2·k) and its F1 rises with k, so per-class
    scalability correlates positively with recognizability by construction.
    """
    rng = np.random.default_rng(seed)
    runs: list[RunRecord] = []
    scores: list[CellScoreRecord] = []
    sets = ("id", "ood-a")

    def evals(alpha: float, amp: float, n: int) -> dict[str, EvalRecord]:
        out = {}
        for j, es in enumerate(sets):
            a = alpha * (1.0 if j == 0 else 0.7)
            per_class = {}
            for k, (cid, _) in enumerate(CLASSES):
                err = min(0.95, amp * n ** (-a * (0.6 + 0.2 * k)) * float(np.exp(rng.normal(0, noise))))
                per_class[cid] = 1.0 - err
            err_all = min(0.95, amp * n ** (-a) * float(np.exp(rng.normal(0, noise))))
            out[es] = EvalRecord(es, top1=1.0 - err_all, loss=2 * err_all, per_class=per_class, n=1000)
        return out

    for n in sizes:
        for s in seeds:
            runs.append(RunRecord(f"real-{n}-{s}", "real", "cnn", n, s, evals(real_alpha, 0.9, n)))
    for i, cfg in enumerate(cfgs):
        for j, strat in enumerate(strategies):
            alpha = 0.2 + 0.05 * i + 0.04 * j
            for n in sizes:
                for s in seeds:
                    runs.append(RunRecord(f"syn-{cfg}-{strat}-{n}-{s}", "synthetic", "cnn", n, s,
                                          evals(alpha, 0.95, n), "gen", cfg, strat))
                    if mix:
                        runs.append(RunRecord(f"mix-{cfg}-{strat}-{n}-{s}", "mixed", "cnn", n, s,
                                              evals(alpha + 0.05, 0.8, n), "gen", cfg, strat, mix))
            classes = {
                cid: ClassScoreRecord(cid, 100, 0.5 + 0.1 * k, 0.5 + 0.1 * k, 0.4 + 0.1 * k - 0.05 * i,
                                      0.6 - 0.05 * i + 0.01 * k)
                for k, (cid, _) in enumerate(CLASSES)
            }
            scores.append(CellScoreRecord("gen", cfg, strat, macro_f1=0.7 - 0.05 * abs(i - 1),
                                          diversity=0.6 - 0.05 * i, classes=classes, fid=10.0 + i))
    return AnalysisInput(
        study_id="toy-0000", study_name="toy", classes=CLASSES, runs=tuple(runs), scores=tuple(scores),
        id_set="id", ood_sets=("ood-a",), bootstrap=50, holdout_sizes=1, seed=0,
    )


@pytest.fixture(name="make_input", scope="session")
def make_input_fixture():  # type: ignore[no-untyped-def]
    """The builder above (the suite imports test modules by path, so helpers come as fixtures)."""
    return make_input


# -- fake services that follow the data-flow conventions (for orchestration tests) -------------



TOY_STUDY = """
name: toy-orchestration
seed: 3
classes: {set: fashion-mnist, ids: [tshirt, trouser, pullover]}
generators:
  - {name: fake, backend: embedded, steps: 2, cfg: [1.0, 3.0]}
strategies: [classname, clip_templates]
images_per_class: [4, 8, 16]
real: {set: fashion-mnist, per_class: [4, 8, 16], mix_real_per_class: 4}
scoring: {fid: false, lpips: false}
training:
  - {name: cnn, arch: embedded-cnn, seeds: [0]}
evaluation: {id: fashion-mnist-test, ood: [inverted]}
analysis: {bootstrap: 20, holdout_sizes: 1}
"""


def _jitter(*parts: object) -> float:
    """A deterministic 'noise' in [-1, 1] from the parts."""
    return int(hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:8], 16) / 0x7FFFFFFF - 1.0


@dataclass
class FakeLog:
    """What the fake services did, to check that no work is done twice."""

    shards_written: Counter = field(default_factory=Counter)
    runs_trained: Counter = field(default_factory=Counter)
    cells_scored: Counter = field(default_factory=Counter)


def fake_providers(log: FakeLog, shard_size: int = 8) -> dict[str, object]:
    """prompter, generator, scorer and trainer stand-ins; the real analyzer is added by the caller."""

    def spec_of(ctx: ServiceContext, study_id: str) -> StudySpec:
        return parse_study(ctx.store.get(layout.spec_key(study_id)).decode())

    def prompter(ctx: ServiceContext) -> list[Subscription]:
        def handle(m: Message) -> None:
            sub = study_pb2.StudySubmission.FromString(m.value)
            spec = parse_study(sub.spec_yaml)
            for chunk in plan.chunks(spec, study_classes(spec), shard_size):  # the study's jobs
                for ident in chunk.identities(spec.study_id):
                    job = generator_pb2.GenerationJob(job=ident, class_index=chunk.label)
                    ctx.publish("generation-jobs", job.SerializeToString(), key=ids.job_id({"k": str(ident)}))

        return [Subscription(("study-submissions",), "prompter", handle)]

    def generator(ctx: ServiceContext) -> list[Subscription]:
        def handle(m: Message) -> None:
            job = generator_pb2.GenerationJob.FromString(m.value).job
            key = layout.shard_key(job.study_id, job.cell.generator, job.cell.cfg, job.cell.strategy,
                                job.class_id, job.seed_start, job.seed_count)
            info = ctx.store.stat(key)
            if info is None:
                samples = []
                for i in range(job.seed_start, job.seed_start + job.seed_count):
                    value = int(40 + 20 * job.cell.cfg + i) % 256
                    samples.append(Sample(ids.sample_key(job.class_id, i),
                                          encode_png(np.full((32, 32), value, np.uint8)),
                                          {"class_id": job.class_id, "index": i}))
                info = ctx.store.put(key, write_shard(samples))
                log.shards_written[key] += 1
            ref = common_pb2.ShardRef(bucket=ctx.store.bucket, key=key, sha256=info.sha256,
                                      count=job.seed_count, job=job)
            ctx.publish("shards-ready", generator_pb2.ShardReady(shard=ref).SerializeToString(), key=key)

        return [Subscription(("generation-jobs",), "generator", handle)]

    def scorer(ctx: ServiceContext) -> list[Subscription]:
        def handle(m: Message) -> None:
            ref = generator_pb2.ShardReady.FromString(m.value).shard
            job = ref.job
            spec = spec_of(ctx, job.study_id)
            cell = job.cell
            prefix = layout.cell_prefix(job.study_id, cell.generator, cell.cfg, cell.strategy)
            images = sum(len(list(iter_shard(ctx.store.get(o.key)))) for o in ctx.store.list(prefix))
            classes = list(study_classes(spec).ids)
            if images < len(classes) * spec.max_images_per_class:
                return  # the cell is not complete yet
            json_key = layout.score_key(job.study_id, cell.generator, cell.cfg, cell.strategy, "scores.json")
            if ctx.store.exists(json_key):
                result = codecs.score_result_from_json(ctx.store.get(json_key))
            else:
                i = [c for g in spec.generators for c in g.cfg].index(cell.cfg)
                nan = float("nan")  # not computed (fid/lpips off), as the scorer reports it
                classes = [scorer_pb2.ClassScore(class_id=cid, n=spec.max_images_per_class,
                                                 f1=0.4 + 0.2 * k - 0.05 * i,
                                                 diversity_std=0.6 - 0.1 * i + 0.02 * k, fid=nan, lpips=nan)
                           for k, cid in enumerate(classes)]
                result = scorer_pb2.ScoreResult(
                    study_id=job.study_id, cell=cell, classes=classes,
                    macro_f1=float(np.mean([c.f1 for c in classes])),
                    diversity=float(np.mean([c.diversity_std for c in classes])),
                    scored=images, json_key=json_key, bucket=ctx.store.bucket, fid=nan, lpips=nan,
                    kid_mean=nan)
                # the scorer's scores.json, through the one codec (null where not computed)
                ctx.store.put(json_key, codecs.score_result_to_json(result))
                log.cells_scored[json_key] += 1
            ctx.publish("scores", result.SerializeToString(), key=json_key)

        return [Subscription(("shards-ready",), "scorer", handle)]

    def trainer(ctx: ServiceContext) -> list[Subscription]:
        def handle(m: Message) -> None:
            job = trainer_pb2.TrainingJob.FromString(m.value)
            key = layout.run_key(job.study_id, job.run_id, "result.json")
            if ctx.store.exists(key):
                result = codecs.run_result_from_json(ctx.store.get(key))
            else:
                spec = spec_of(ctx, job.study_id)
                if not job.cells:
                    alpha, amp, n = 0.5, 0.9, job.real_per_class
                else:
                    alpha = 0.2 + 0.05 * job.cells[0].cfg + (0.04 if job.real_per_class else 0.0)
                    amp, n = 0.95, job.n_per_class
                evals = []
                for j, es in enumerate(job.eval_sets):
                    a = alpha * (1.0 if j == 0 else 0.6)
                    per_class = {cid: 1 - min(0.95, amp * n ** (-a * (0.6 + 0.3 * k)))
                                 for k, cid in enumerate(study_classes(spec).ids)}
                    err = min(0.95, amp * n ** (-a) * (1 + 0.03 * _jitter(job.run_id, es)))
                    evals.append(trainer_pb2.EvalMetrics(set_name=es, top1=1 - err, loss=2 * err,
                                                         per_class=per_class, n=100))
                result = trainer_pb2.RunResult(study_id=job.study_id, run_id=job.run_id, job=job,
                                               evals=evals, status="done")
                ctx.store.put(key, codecs.run_result_to_json(result))
                log.runs_trained[job.run_id] += 1
            ctx.publish("run-results", result.SerializeToString(), key=job.run_id)

        return [Subscription(("training-jobs",), "trainer", handle)]

    return {"prompter": prompter, "generator": generator, "scorer": scorer, "trainer": trainer}


@pytest.fixture
def toy_spec() -> StudySpec:
    return parse_study(TOY_STUDY)


@pytest.fixture(name="fakes")
def fakes_fixture():  # type: ignore[no-untyped-def]
    """A factory: each call gives a fresh (FakeLog, providers incl. the real analyzer)."""
    from synscale_analyzer.worker import subscriptions as analyzer

    def new() -> tuple[FakeLog, dict[str, object]]:
        log = FakeLog()
        return log, {**fake_providers(log), "analyzer": analyzer}

    return new


@pytest.fixture
def served(tmp_path: Path, fakes) -> Iterator[tuple[EmbeddedRunner, study_pb2_grpc.AnalyzerStub, str]]:  # type: ignore[no-untyped-def]
    """The Analyzer gRPC server over the fake services, with its embedded runner and address."""
    _, providers = fakes()
    orchestrator = Parts(Orchestrator)  # one per process, for the worker and the servicer (as __main__)
    providers["analyzer"] = lambda ctx: subscriptions(ctx, orchestrator(ctx))
    runner = EmbeddedRunner(tmp_path, providers)
    server, port, _ = build_server(bindings(runner.ctx, orchestrator(runner.ctx)), "127.0.0.1:0")
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield runner, study_pb2_grpc.AnalyzerStub(channel), f"127.0.0.1:{port}"
    finally:
        channel.close()
        server.stop(None)
        runner.close()
