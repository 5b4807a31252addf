"""The distributed runtime for real: five service processes over real Kafka and MinIO.

`python -m synscale_<svc>` for the prompter, generator, scorer, trainer and analyzer, each
configured only by environment variables (fresh bucket and topic prefix per test). The toy
study goes in through the CLI over gRPC (`synscale study submit --watch`) and must end with
exactly what the embedded runtime (MemoryBus + FileStore, one process) produces for the same
study: the same object keys with the same bytes (a training run's records aside: they hold
its wall-clock time and bucket name), the same images, the same report numbers.

Then the same study on a fresh deployment with the generator SIGKILLed after some but not
all shards exist, and started again: every image of every cell exists exactly once and
the report is still the embedded one.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from synscale import layout
from synscale.embedded import run_study
from synscale.plan import plan_runs, study_classes
from synscale.store.file import FileStore
from synscale.study import StudySpec, parse_study
from synscale.testing.modules import load_module

pytestmark = [pytest.mark.infra, pytest.mark.slow]
HERE = Path(__file__).resolve().parent
TOY = HERE.parents[1] / "examples" / "toy.yaml"
STUDY_TIMEOUT_S = 1500  # a hang guard, not a speed check (a loaded 2-core CI box is slow)
# Images per generation job and shard (the prompter's SYNSCALE_SHARD_SIZE), in both runtimes:
# two shards per class, so a cell spans several shards and the generator is killed with
# most jobs still to do, however fast it samples.
SHARD_SIZE = "4"


support = load_module("synscale_e2e_support", HERE / "_support.py")


@dataclass(frozen=True)
class Expected:
    """What the embedded runtime produced for the study."""

    spec: StudySpec
    path: Path
    artifacts: dict[str, str]  # key below the study prefix -> sha256
    report: dict[str, Any]
    results: dict[str, Any]  # runs/<id>/result.json -> its content without wall-clock fields
    images: Counter[tuple[str, float, str, str, int]]


def _every_image_once(spec: StudySpec) -> Counter[tuple[str, float, str, str, int]]:
    """Each (generator, cfg, strategy, class, index) of the study, once."""
    return Counter({(g.name, float(cfg), strategy, class_id, i): 1
                    for g in spec.generators for cfg in g.cfg for strategy in spec.strategies
                    for class_id in study_classes(spec).ids for i in range(spec.max_images_per_class)})


def study_spec() -> StudySpec:
    """examples/toy.yaml (the CI study) with one CFG value instead of two.

    This module runs the study three times (embedded, distributed, distributed with a
    kill), so it halves the toy's generation and synthetic training; everything else —
    classes, sizes, the real baseline, recipe, evaluation, analysis — is the toy's.
    """
    data = yaml.safe_load(TOY.read_text())
    data["name"] = "toy-distributed"
    data["generators"][0]["cfg"] = [2.0]
    return parse_study(yaml.safe_dump(data, sort_keys=False), f"{TOY} (one CFG value)")


@pytest.fixture(scope="module")
def expected(tmp_path_factory: pytest.TempPathFactory) -> Expected:
    spec = study_spec()
    path = tmp_path_factory.mktemp("study") / "toy.yaml"
    path.write_text(spec.to_yaml())
    data = tmp_path_factory.mktemp("embedded")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SYNSCALE_SHARD_SIZE", SHARD_SIZE)
        outcome = run_study(spec, data, progress=False)
    assert outcome.state == "done", outcome.dead_letters
    assert outcome.report_json is not None
    store = FileStore(data / "store", "synscale")
    images = support.sample_counts(store, spec.study_id)
    assert images == _every_image_once(spec), "the embedded run itself is incomplete"
    assert len(support.shard_keys(store, spec.study_id)) == len(images) // int(SHARD_SIZE)
    artifacts = support.study_artifacts(store, spec.study_id)
    results = _run_results(store, spec.study_id, artifacts)
    assert len(results) == len(plan_runs(spec, "synscale")), "the embedded run trained too few models"
    return Expected(spec, path, artifacts, json.loads(outcome.report_json.read_bytes()), results, images)


@pytest.fixture
def deployment(infra_env: dict[str, str], minio_store: Any, unique: str,
               tmp_path: Path) -> Iterator[Any]:
    env = support.service_env(infra_env, minio_store.bucket, f"e2e-{unique}",
                              {"SYNSCALE_SHARD_SIZE": SHARD_SIZE})
    with support.running(support.Deployment(env, tmp_path / "logs")) as d:
        yield d


def _report(store: Any, study_id: str) -> dict[str, Any]:
    return json.loads(store.get(layout.report_key(study_id, "report.json")))


# A training run records its wall-clock time and the bucket it read from, in result.json and
# in checkpoint.pt: the only bytes a deployment may change. Everything else must be identical.
RUN_RECORDS = ("/result.json", "/checkpoint.pt")


def _without_wall_clock(doc: Any) -> Any:
    """A run's result.json minus durations (`*_seconds`) and the bucket name."""
    if isinstance(doc, dict):
        return {k: _without_wall_clock(v) for k, v in doc.items()
                if not k.endswith("_seconds") and k != "bucket"}
    if isinstance(doc, list):
        return [_without_wall_clock(v) for v in doc]
    return doc


def _run_results(store: Any, study_id: str, artifacts: dict[str, str]) -> dict[str, Any]:
    prefix = layout.study_prefix(study_id) + "/"
    return {k: _without_wall_clock(json.loads(store.get(prefix + k)))
            for k in artifacts if k.startswith("runs/") and k.endswith("/result.json")}


def _assert_same_as_embedded(store: Any, expected: Expected, logs: str) -> None:
    study_id = expected.spec.study_id
    assert _report(store, study_id) == expected.report, logs[-6000:]
    images = support.sample_counts(store, study_id)
    duplicated = {k: n for k, n in images.items() if n > 1}
    missing = set(expected.images) - set(images)
    assert not duplicated and not missing, (
        f"duplicated {sorted(duplicated)[:5]}, missing {sorted(missing)[:5]}")
    assert images == expected.images
    artifacts = support.study_artifacts(store, study_id)
    assert sorted(artifacts) == sorted(expected.artifacts)
    differing = sorted(k for k in artifacts if artifacts[k] != expected.artifacts[k]
                       and not (k.startswith("runs/") and k.endswith(RUN_RECORDS)))
    assert not differing, f"same keys, other bytes: {differing[:10]}"
    assert _run_results(store, study_id, artifacts) == expected.results


def test_study_through_five_service_processes_matches_the_embedded_run(
    deployment: Any, minio_store: Any, expected: Expected,
) -> None:
    analyzer = deployment.procs["analyzer"].address
    done = deployment.cli("study", "submit", str(expected.path), "--watch", "--address", analyzer,
                          timeout_s=STUDY_TIMEOUT_S)
    assert done.returncode == 0, done.stdout + done.stderr + deployment.logs()
    assert f"study {expected.spec.study_id}: done" in done.stdout

    _assert_same_as_embedded(minio_store, expected, deployment.logs())

    # Every service stops gracefully on SIGTERM once the study is done.
    assert deployment.stop_all() == dict.fromkeys(support.SERVICES, 0), deployment.logs()


def test_generator_killed_mid_study_is_restarted_and_no_image_is_lost_or_repeated(
    deployment: Any, minio_store: Any, expected: Expected,
) -> None:
    study_id = expected.spec.study_id
    total = sum(1 for k in expected.artifacts if k.startswith("images/"))
    analyzer = deployment.procs["analyzer"].address
    submitted = deployment.cli("study", "submit", str(expected.path), "--address", analyzer, timeout_s=120)
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr + deployment.logs()

    def some_shards() -> int:
        deployment.check_alive()
        return len(support.shard_keys(minio_store, study_id))

    support.wait_for(some_shards, STUDY_TIMEOUT_S, "the generator's first shards", interval_s=0.1,
                     on_timeout=deployment.logs)
    deployment.kill("generator")
    at_kill = len(support.shard_keys(minio_store, study_id))
    assert 0 < at_kill < total, f"{at_kill} of {total} shards existed when the generator was killed"

    deployment.start("generator")
    deployment.wait_ready(["generator"])
    done = deployment.cli("study", "watch", study_id, "--address", analyzer, timeout_s=STUDY_TIMEOUT_S)
    assert done.returncode == 0, done.stdout + done.stderr + deployment.logs()

    _assert_same_as_embedded(minio_store, expected, deployment.logs())
