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

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from synscale.testing.modules import load_module

pytestmark = [pytest.mark.infra, pytest.mark.slow]
HERE = Path(__file__).resolve().parent
support = load_module("synscale_e2e_support", HERE / "_support.py")
STUDY_TIMEOUT_S = support.STUDY_TIMEOUT_S
SHARD_SIZE = support.SHARD_SIZE
# The embedded run to compare with is the session fixture `expected` (tests/e2e/conftest.py).


@pytest.fixture
def deployment(infra_env: dict[str, str], minio_store: Any, unique: str,
               tmp_path: Path) -> Iterator[Any]:
    env = support.service_env(infra_env, minio_store.bucket, f"e2e-{unique}",
                              {"SYNSCALE_SHARD_SIZE": SHARD_SIZE})
    with support.running(support.Deployment(env, tmp_path / "logs")) as d:
        yield d


def test_study_through_five_service_processes_matches_the_embedded_run(
    deployment: Any, minio_store: Any, expected: Any,
) -> None:
    analyzer = deployment.procs["analyzer"].address
    done = deployment.cli("study", "submit", str(expected.path), "--watch", "--address", analyzer,
                          timeout_s=STUDY_TIMEOUT_S)
    assert done.returncode == 0, done.stdout + done.stderr + deployment.logs()
    assert f"study {expected.spec.study_id}: done" in done.stdout

    support.assert_same_as_embedded(minio_store, expected, deployment.logs())

    # Every service stops gracefully on SIGTERM once the study is done.
    assert deployment.stop_all() == dict.fromkeys(support.SERVICES, 0), deployment.logs()


def test_generator_killed_mid_study_is_restarted_and_no_image_is_lost_or_repeated(
    deployment: Any, minio_store: Any, expected: Any,
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

    support.assert_same_as_embedded(minio_store, expected, deployment.logs())
