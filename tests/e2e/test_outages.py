"""Infrastructure outages on real Kafka and MinIO: waited out, never dead-lettered, no stall.

Five service processes (`python -m synscale_<svc>`) on a Kafka broker and a MinIO server
of this module's own (support.PrivateInfra), so they can be stopped mid-study:

- MinIO stopped for OUTAGE_S with every service SERVING mid-study, then restarted on the
  same data: the study completes without resubmission, every image exactly once, the
  report identical to the embedded run, and the dead-letter topics hold only the junk
  this test published during the outage (dead-lettered after its attempts);
- the same with the broker SIGKILLed and restarted on its data directory;
- a service started while MinIO, then Kafka, is down reports NOT_SERVING, stays up, and
  becomes SERVING and does its work once the dependency answers;
- a real generation job dead-lettered on purpose is re-issued by the analyzer's
  reconciler and the study completes; `synscale dlq replay` republishes its bytes.

Each test prints one JSON line `outage-figures: {...}` (outage length, time to recover,
the image and report checks) for the issue's note; SYNSCALE_OUTAGE_REPORT=<file> appends
them there too. No assertion is about time: the timeouts are hang guards.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from synscale import layout
from synscale.bus.base import ConsumerOptions, Message, PoisonMessage, RetryPolicy
from synscale.bus.kafka import KafkaBus
from synscale.config import Topics
from synscale.dlq import REPLAYED_FROM_HEADER
from synscale.store.minio import MinioStore
from synscale.testing.modules import load_module
from synscale.v1 import common_pb2, generator_pb2, study_pb2

pytestmark = [pytest.mark.infra, pytest.mark.slow]
HERE = Path(__file__).resolve().parent
support = load_module("synscale_e2e_support", HERE / "_support.py")
OUTAGE_S = 30.0
# Short reconcile and health intervals so a test sees them act within its outage.
ENV = {"SYNSCALE_SHARD_SIZE": support.SHARD_SIZE, "SYNSCALE_RECONCILE_INTERVAL_S": "5",
       "SYNSCALE_HEALTH_INTERVAL_S": "1"}
JUNK = b"junk: not a protobuf of any topic"


def record(test: str, **figures: Any) -> None:
    line = json.dumps({"test": test, **figures}, sort_keys=True)
    print(f"outage-figures: {line}")
    target = os.environ.get("SYNSCALE_OUTAGE_REPORT")
    if target:
        with open(target, "a") as out:
            out.write(line + "\n")


@pytest.fixture(scope="module")
def infra(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    private = support.PrivateInfra(tmp_path_factory.mktemp("infra"))
    private.up()
    try:
        yield private
    finally:
        private.down()


@pytest.fixture
def live(infra: Any) -> Any:
    """The private servers, both running (a failed test may have left one stopped)."""
    if infra._pid("minio") is None:
        infra.start_minio()
    if infra._pid("kafka") is None:
        infra.start_kafka()
    return infra


@pytest.fixture
def store(live: Any, unique: str) -> MinioStore:
    env = live.env
    return MinioStore(env["S3_ENDPOINT"], env["S3_ACCESS_KEY"], env["S3_SECRET_KEY"], f"outage-{unique}")


@pytest.fixture
def deployment(live: Any, store: MinioStore, unique: str, tmp_path: Path) -> Iterator[Any]:
    env = support.service_env(live.env, store.bucket, f"outage-{unique}", ENV)
    d = support.Deployment(env, tmp_path / "logs")
    try:
        yield d
    finally:
        d.stop_all()


def _submit(d: Any, expected: Any) -> str:
    analyzer = d.procs["analyzer"].address
    submitted = d.cli("study", "submit", str(expected.path), "--address", analyzer, timeout_s=120)
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr + d.logs()
    return str(expected.spec.study_id)


def _watch(d: Any, study_id: str) -> str:
    done = d.cli("study", "watch", study_id, "--address", d.procs["analyzer"].address,
                 timeout_s=support.STUDY_TIMEOUT_S)
    assert done.returncode == 0, done.stdout + done.stderr + d.logs()
    assert f"study {study_id}: done" in done.stdout, done.stdout
    return str(done.stdout)


def _mid_study(d: Any, store: MinioStore, expected: Any) -> tuple[str, int, int]:
    """Submit, and return once some but not all shards exist with every service SERVING."""
    study_id = _submit(d, expected)
    total = sum(1 for k in expected.artifacts if k.startswith("images/"))

    def some() -> int:
        d.check_alive()
        return len(support.shard_keys(store, study_id))

    support.wait_for(some, support.STUDY_TIMEOUT_S, "the first shards", interval_s=0.2, on_timeout=d.logs)
    serving = support.health(d)
    at = len(support.shard_keys(store, study_id))
    assert 0 < at < total, f"{at} of {total} shards existed at the fault"
    assert all(serving.values()), serving
    return study_id, at, total


def _checks(store: MinioStore, expected: Any, d: Any) -> dict[str, Any]:
    """The image and report checks (assert_same_as_embedded), as figures."""
    support.assert_same_as_embedded(store, expected, d.logs())
    images = support.sample_counts(store, expected.spec.study_id)
    return {"images": sum(images.values()), "distinct_images": len(images),
            "duplicated": sum(1 for n in images.values() if n > 1),
            "missing": len(set(expected.images) - set(images)), "report_identical": True}


def _junk(bus: KafkaBus, prefix: str) -> dict[str, bytes]:
    """Poison for three services, and an event of a study nobody submitted."""
    topics = Topics(prefix=prefix)
    stray = generator_pb2.ShardReady(shard=common_pb2.ShardRef(
        bucket="elsewhere", key="studies/no-such-study/images/x/y.tar", count=1,
        job=common_pb2.JobIdentity(study_id="no-such-study", class_id="c", seed_start=0, seed_count=1,
                                   cell=common_pb2.CellId(generator="g", cfg=1.0, strategy="s"))))
    sent = {"generation-jobs": JUNK, "training-jobs": JUNK, "shards-ready": stray.SerializeToString()}
    for logical, value in sent.items():
        bus.publish(topics.name(logical), value, key="junk")
    bus.flush()
    return sent


def _assert_only_junk_dead_lettered(letters: list[Any], junk: dict[str, bytes]) -> dict[str, int]:
    real = [(x.id, x.letter.consumer_group, x.letter.error[:200]) for x in letters
            if x.letter.value not in junk.values()]
    assert not real, f"real work was dead-lettered: {real}"
    by_topic = {logical: [x for x in letters if x.logical == logical] for logical in junk}
    for logical, value in junk.items():
        assert any(x.letter.value == value for x in by_topic[logical]), \
            f"the junk on {logical} was not dead-lettered"
    assert not [x for x in letters if x.letter.consumer_group == "analyzer"], \
        "the analyzer dead-lettered an event of an unknown study instead of dropping it"
    return {logical: len(v) for logical, v in by_topic.items()}


def _outage_mid_study(d: Any, live: Any, store: MinioStore, expected: Any, unique: str, what: str) -> None:
    """Stop `what` ("minio" or "kafka") for OUTAGE_S mid-study; the study must end as if it never was."""
    stop, start = {"minio": (live.stop_minio, live.start_minio),
                   "kafka": (live.kill_kafka, live.start_kafka)}[what]
    bootstrap, prefix = live.env["KAFKA_BOOTSTRAP_SERVERS"], f"outage-{unique}"
    d.start_all()
    d.wait_ready()
    study_id, at, total = _mid_study(d, store, expected)
    bus = KafkaBus(bootstrap)
    try:
        if what == "kafka":
            junk = _junk(bus, prefix)  # poison just before the broker dies
            bus.close()
        stop()
        stopped = time.monotonic()
        if what == "minio":
            junk = _junk(bus, prefix)  # poison arriving during the outage
        support.wait_for(lambda: not any(support.health(d).values()), OUTAGE_S + 30,
                         f"every service to report NOT_SERVING while {what} is down", interval_s=0.5,
                         on_timeout=d.logs)
        not_serving_after = time.monotonic() - stopped
        while time.monotonic() - stopped < OUTAGE_S:
            d.check_alive()  # nothing exits for an outage
            time.sleep(1)
        start()
        outage = time.monotonic() - stopped
        back = time.monotonic()
        d.wait_ready()
        serving_again = time.monotonic() - back
        _watch(d, study_id)
        study_done = time.monotonic() - back
    finally:
        bus.close()
    figures = _checks(store, expected, d)
    dlq = _assert_only_junk_dead_lettered(support.dead_letters(bootstrap, prefix), junk)
    assert d.stop_all() == dict.fromkeys(support.SERVICES, 0), d.logs()
    record(f"{what}_outage", shards_at_fault=at, shards_total=total, outage_s=round(outage, 1),
           all_not_serving_after_s=round(not_serving_after, 1),
           all_serving_after_restart_s=round(serving_again, 1),
           study_done_after_restart_s=round(study_done, 1), dead_letters_junk_only=dlq, **figures)


def test_minio_stopped_mid_study_is_waited_out_and_the_study_completes(
    deployment: Any, live: Any, store: MinioStore, expected: Any, unique: str,
) -> None:
    _outage_mid_study(deployment, live, store, expected, unique, "minio")


def test_kafka_broker_killed_mid_study_is_waited_out_and_the_study_completes(
    deployment: Any, live: Any, store: MinioStore, expected: Any, unique: str,
) -> None:
    _outage_mid_study(deployment, live, store, expected, unique, "kafka")


def _degraded_start(d: Any, stop: Any, start: Any, what: str) -> dict[str, float]:
    """Start the prompter with a dependency down: NOT_SERVING, alive, then SERVING once it is back."""
    stop()
    try:
        d.start("prompter")
        started = time.monotonic()
        support.wait_for(lambda: '"event": "degraded"' in d.log_tail("prompter", 200_000), 120,
                         f"the prompter to log that it started degraded ({what} down)",
                         on_timeout=lambda: d.log_tail("prompter"))
        while time.monotonic() - started < 10:
            d.check_alive()
            assert not support.health(d)["prompter"], f"SERVING while {what} is down"
            time.sleep(1)
    finally:
        start()
    back = time.monotonic()
    d.wait_ready(["prompter"])
    return {f"{what}_down_s": round(back - started, 1),
            "serving_after_restart_s": round(time.monotonic() - back, 1)}


def _prompter_does_its_work(live: Any, d: Any, prefix: str, unique: str, bucket: str) -> int:
    """A submission in, every generation job of the study out."""
    from synscale_prompter.classes import class_set_for_spec
    from synscale_prompter.worker import JobPlanner

    spec = support.study_spec()
    want = JobPlanner(spec, class_set_for_spec(spec.classes), bucket, int(support.SHARD_SIZE)).count()
    topics = Topics(prefix=prefix)
    bus = KafkaBus(live.env["KAFKA_BOOTSTRAP_SERVERS"])
    try:
        sub = study_pb2.StudySubmission(study_id=spec.study_id, spec_yaml=spec.to_yaml())
        bus.publish(topics.name("study-submissions"), sub.SerializeToString(), key=spec.study_id)
        bus.flush()
        jobs: list[Message] = []
        reader = bus.subscribe([topics.name("generation-jobs")], f"check-{unique}-{time.monotonic_ns()}",
                               jobs.append)
        reader.run(max_messages=want, idle_timeout_s=120)
        reader.close()
    finally:
        bus.close()
    assert len(jobs) == want, f"{len(jobs)} of {want} generation jobs\n{d.log_tail('prompter')}"
    assert {generator_pb2.GenerationJob.FromString(m.value).job.study_id for m in jobs} == {spec.study_id}
    return want


def test_a_service_started_while_minio_then_kafka_is_down_waits_and_then_works(
    live: Any, store: MinioStore, unique: str, tmp_path: Path,
) -> None:
    figures: dict[str, Any] = {}
    for what, stop, start in (("minio", live.stop_minio, live.start_minio),
                              ("kafka", live.kill_kafka, live.start_kafka)):
        prefix = f"degraded-{what}-{unique}"
        env = support.service_env(live.env, store.bucket, prefix, ENV)
        d = support.Deployment(env, tmp_path / f"logs-{what}", services=("prompter",))
        try:
            figures[what] = _degraded_start(d, stop, start, what)
            figures[what]["generation_jobs"] = _prompter_does_its_work(live, d, prefix, unique, store.bucket)
        finally:
            codes = d.stop_all()
        assert codes == {"prompter": 0}, d.logs()
    record("degraded_start", **figures)


def test_a_dead_lettered_generation_job_is_reissued_and_replay_republishes_its_bytes(
    deployment: Any, live: Any, store: MinioStore, expected: Any, unique: str,
) -> None:
    d = deployment
    prefix = f"outage-{unique}"
    topic = Topics(prefix=prefix).name("generation-jobs")
    bootstrap = live.env["KAFKA_BOOTSTRAP_SERVERS"]
    others = [s for s in support.SERVICES if s != "generator"]
    for name in others:
        d.start(name)
    d.wait_ready(others)
    study_id = _submit(d, expected)

    # Be the generator for one job, and dead-letter it through the real consume loop.
    bus = KafkaBus(bootstrap)
    victim: list[Message] = []

    def dead(m: Message) -> None:
        victim.append(m)
        raise PoisonMessage("injected: as if this real job could never succeed")

    w = bus.subscribe([topic], "generator", dead, retry=RetryPolicy(max_attempts=1),
                      options=ConsumerOptions(max_poll_records=1))
    w.run(max_messages=1, idle_timeout_s=300)
    w.close()
    assert len(victim) == 1 and w.dead_lettered == 1
    job = generator_pb2.GenerationJob.FromString(victim[0].value)
    lost = layout.shard_key(study_id, job.job.cell.generator, job.job.cell.cfg, job.job.cell.strategy,
                         job.job.class_id, job.job.seed_start, job.job.seed_count)

    d.start("generator")
    started = time.monotonic()
    d.wait_ready(["generator"])
    _watch(d, study_id)
    recovered = time.monotonic() - started
    figures = _checks(store, expected, d)
    assert store.exists(lost)
    status = d.cli("study", "status", study_id, "--address", d.procs["analyzer"].address, timeout_s=60)
    assert "re-issued generation" in status.stdout, status.stdout + d.logs()

    letters = support.dead_letters(bootstrap, prefix)
    assert [(x.logical, x.letter.value) for x in letters] == [("generation-jobs", victim[0].value)]
    listed = d.cli("dlq", "list", "--topic", "generation-jobs", "--study", study_id, "--reason", "Poison",
                   timeout_s=60)
    assert listed.returncode == 0 and letters[0].id in listed.stdout, listed.stdout + listed.stderr
    replayed = d.cli("dlq", "replay", "--id", letters[0].id, timeout_s=60)
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr

    copies: list[Message] = []
    reader = bus.subscribe([topic], f"check-{unique}", copies.append)
    reader.run(idle_timeout_s=10)
    reader.close()
    bus.close()
    again = [m for m in copies if dict(m.headers).get(REPLAYED_FROM_HEADER) == letters[0].id.encode()]
    assert len(again) == 1
    assert (again[0].value, again[0].key) == (victim[0].value, victim[0].key), "replay changed the bytes"
    record("dead_letter_reissue", lost_shard=lost, study_done_after_generator_start_s=round(recovered, 1),
           status_lines=[ln.strip() for ln in status.stdout.splitlines() if "re-issued" in ln],
           replayed_bytes=len(again[0].value), **figures)
