"""No study stalls on lost work: the analyzer compares the plan with the store (ADR 0016).

Messages get lost for good in a few ways even with at-least-once delivery: a job
dead-lettered for a reason since fixed, an event the analyzer never saw because the
in-memory bus died with its process, a result published during a broker outage by code
that swallowed the error. Events then never arrive, and a study that waits for them
waits forever. The reconciler does not wait for events: on start and every
SYNSCALE_RECONCILE_INTERVAL_S seconds it rebuilds each unfinished study from the store
(what exists), compares it with the plan (what must exist), and re-issues what is
missing — but only where nothing could still produce it:

- generation: images missing, and neither the prompter (study-submissions) nor the
  generators (generation-jobs) have anything queued or in hand → the study's submission
  is re-published with the MISSING_ONLY header; the prompter then publishes the jobs of
  the missing shards only;
- scoring: a cell with every image but no scores.json, and the scorers' queue
  (shards-ready) empty → its shard events are re-published (the scorer keeps the
  partials it has and aggregates once the last is in);
- training: a run whose data exist but that has no result, and the trainers' queue
  (training-jobs) empty → its job is re-published (a trainer that finished it
  re-announces the stored result; one that was interrupted resumes its checkpoint).

"Nothing queued or in hand" is the consumer group's lag: an offset is committed only
after the handler's output is stored and flushed, so a lag of 0 read *before* the store
is listed means every message of that stage has left its mark in the store. A study is
looked at only when it made no progress since the previous pass (or on the first pass
after a restart). Keys are deterministic, so a re-issued job that was not lost after all
only rewrites the same bytes. Each re-issue is recorded (`studies/<id>/state/reissued.json`,
a study event "reconcile", and `synscale study status`); an item re-issued
MAX_REISSUES times is left alone and said so, so a message that fails for good cannot
loop.

Everything the reconciler needs from the analyzer goes through `AnalyzerPort`, one small
class, so the analyzer's state can change shape without touching the rules above.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import weakref
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from synscale import ids, layout
from synscale.bus.base import MISSING_ONLY_HEADER
from synscale.cells import Cell as CellKey
from synscale.config import env_int
from synscale.errors import is_transient
from synscale.metrics import LagSource, lag_source_for
from synscale.runtime import ServiceContext
from synscale.v1 import common_pb2, generator_pb2, study_pb2
from synscale_analyzer.orchestrator import Orchestrator
from synscale_analyzer.state import StudyState

log = logging.getLogger(__name__)

MAX_REISSUES = 3  # per study and item; then the reconciler says it gives up on that item
# Which consumer groups must be idle before a stage's missing work counts as lost, in
# pipeline order (upstream first: its lag is read first).
QUIET: Mapping[str, tuple[tuple[str, str], ...]] = {
    "generation": (("prompter", "study-submissions"), ("generator", "generation-jobs")),
    "scoring": (("scorer", "shards-ready"),),
    "training": (("trainer", "training-jobs"),),
}


@dataclass(frozen=True)
class ReconcileSettings:
    interval_s: float = 60.0  # SYNSCALE_RECONCILE_INTERVAL_S; 0 = only the pass at start

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ReconcileSettings:
        return cls(interval_s=float(env_int(os.environ if env is None else env,
                                            "SYNSCALE_RECONCILE_INTERVAL_S", 60, minimum=0)))


@dataclass
class Reissue:
    stage: str
    count: int
    reason: str
    at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    items: list[str] = field(default_factory=list)

    def proto(self) -> study_pb2.Reissue:
        return study_pb2.Reissue(stage=self.stage, count=self.count, reason=self.reason, at=self.at)


class AnalyzerPort:
    """The reconciler's only view of the analyzer: follow, rebuild, adopt, launch, tell."""

    def __init__(self, orch: Orchestrator) -> None:
        self.orch = orch
        self.ctx = orch.ctx

    def followed(self) -> list[str]:
        with self.orch._lock:
            return sorted(self.orch._studies)

    def discover(self) -> set[str]:
        """Every study folder in the store; unfinished ones are loaded (rebuilt) too."""
        store = self.ctx.store
        names = set(store.children("studies/"))
        for name in sorted(names):
            done = store.exists(layout.report_key(name, "report.json"))
            if done or not store.exists(layout.spec_key(name)):
                continue
            try:
                self.orch.study(name)
            except (KeyError, ValueError) as exc:
                log.warning("reconcile: cannot load study %s: %s", name, exc)
        return names

    def get(self, study_id: str) -> StudyState:
        return self.orch.study(study_id)

    def rebuild(self, study_id: str) -> StudyState:
        """The study brought up to what the store holds (merged in place, under the lock).

        Merged rather than replaced: a handler may hold the state object right now, and
        what only events knew (a run that failed for good) must stay.
        """
        with self.orch._lock:
            st = self.get(study_id)
            fresh = self.orch._rebuild(st.spec)
            for (cell, class_id), cov in fresh.coverage.items():
                for lo, hi in cov.intervals:
                    st.add_shard(cell, class_id, lo, hi - lo)
            for cell, score in fresh.scores.items():
                if cell not in st.scores:
                    st.add_score(score)
            for result in fresh.results.values():
                st.add_result(result)
            st.launched |= fresh.launched
            if st.report is None:
                st.report = fresh.report
            return st

    def advance(self, st: StudyState, relaunch: frozenset[str] | set[str] = frozenset()) -> None:
        """Launch what is ready (`relaunch` as if never launched); write the report if complete."""
        with self.orch._lock:
            st.unlaunch(relaunch)
            self.orch._advance(st)

    def event(self, st: StudyState, detail: str) -> None:
        with self.orch._lock:
            self.orch._event(st, "reconcile", detail)
            self.ctx.bus.flush()

    def resubmit_missing(self, st: StudyState) -> int:
        sub = study_pb2.StudySubmission(study_id=st.study_id, spec_yaml=st.spec.to_yaml(),
                                        submitted_at=datetime.now(UTC).isoformat())
        self.ctx.bus.publish(self.ctx.topics.name("study-submissions"), sub.SerializeToString(),
                             key=st.study_id, headers=[(MISSING_ONLY_HEADER, b"1")])
        self.ctx.bus.flush()
        return 1

    def reannounce_cell(self, st: StudyState, cell: CellKey) -> int:
        """Publish a ShardReady for every stored shard of `cell` (what the scorer consumes)."""
        store, sid = self.ctx.store, st.study_id
        classes = {ids.safe_component(cid): cid for cid, _ in st.classes}
        prefix = layout.cell_prefix(sid, cell.generator, cell.cfg, cell.strategy)
        n = 0
        for info in store.list(prefix):
            shard = layout.parse_shard_in_cell(prefix, info.key)
            if shard is None or shard[0] not in classes:
                continue
            folder, start, count = shard
            stat = store.stat(info.key)
            if stat is None:
                continue
            ref = common_pb2.ShardRef(
                bucket=store.bucket, key=info.key, sha256=stat.sha256, count=count, size_bytes=stat.size,
                job=common_pb2.JobIdentity(study_id=sid, cell=cell.proto(), class_id=classes[folder],
                                           seed_start=start, seed_count=count))
            ready = generator_pb2.ShardReady(shard=ref, reannounced=True)
            self.ctx.publish("shards-ready", ready.SerializeToString(), key=info.key)
            n += 1
        self.ctx.bus.flush()
        return n

    def load_history(self, study_id: str) -> list[Reissue]:
        key = layout.reissued_key(study_id)
        if not self.ctx.store.exists(key):
            return []
        return [Reissue(**d) for d in json.loads(self.ctx.store.get(key))]

    def save_history(self, study_id: str, history: list[Reissue]) -> None:
        data = json.dumps([asdict(r) for r in history], indent=1, sort_keys=True).encode()
        self.ctx.store.put(layout.reissued_key(study_id), data, content_type="application/json")


def _missing(st: StudyState, stage: str) -> list[Any]:
    """What `stage` still owes the study: images (one marker), unscored full cells, runs."""
    if stage == "generation":
        images, total = st.images()
        return ["images"] if images < total else []
    if stage == "scoring":
        cap = st.spec.max_images_per_class
        return [c for c in st.cells if st.needs_scores and c not in st.scores and st.cell_prefix(c) >= cap]
    return sorted(r for r in st.launched if r not in st.results and st.data_ready(st.runs[r]))


def _signature(st: StudyState) -> tuple[Any, ...]:
    return (st.images()[0], len(st.scores), len(st.results), st.report is not None)


class Reconciler:
    """One per analyzer process: a daemon thread doing a pass at start, then every interval."""

    def __init__(self, orch: Orchestrator, settings: ReconcileSettings | None = None) -> None:
        self.port = AnalyzerPort(orch)
        self.settings = settings or ReconcileSettings.from_env()
        self.history: dict[str, list[Reissue]] = {}
        self._seen: dict[str, tuple[Any, ...]] = {}
        self._lag: LagSource | None = None
        self._lock = threading.Lock()
        self._started = False

    # -- the thread ------------------------------------------------------------------
    def start(self) -> Reconciler:
        if not self._started:
            self._started = True
            ref = weakref.ref(self)
            threading.Thread(target=_loop, args=(ref, self.settings.interval_s),
                             name="reconciler", daemon=True).start()
        return self

    def first_pass(self) -> bool:
        """Find every study in the store (the analyzer just started); False while it is down."""
        try:
            names = self.port.discover()
        except Exception as exc:
            if not is_transient(exc):
                raise
            log.info("reconcile: store unavailable (%s); retrying", exc)
            return False
        self.port.orch.known_folders = names
        return True

    # -- one pass --------------------------------------------------------------------
    def run_once(self, *, force: bool = False) -> dict[str, list[Reissue]]:
        """Reconcile every followed unfinished study that made no progress since last time."""
        with self._lock:
            try:
                quiet = self._quiet()
                out: dict[str, list[Reissue]] = {}
                for sid in self.port.followed():
                    done = self._study(sid, quiet, force)
                    if done:
                        out[sid] = done
                return out
            except Exception as exc:
                if not is_transient(exc):
                    raise
                log.info("reconcile: a dependency is unavailable (%s); next pass retries", exc)
                return {}

    def _quiet(self) -> dict[str, bool]:
        """Per stage: do its consumer groups have nothing queued or in hand (lag 0)?"""
        if self._lag is None:
            self._lag = lag_source_for(self.port.ctx.bus, self.port.ctx.config.kafka_bootstrap)
        out: dict[str, bool] = {}
        for stage, pairs in QUIET.items():
            lags = []
            for group, logical in pairs:
                try:
                    lags.append(self._lag.lag(self.port.ctx.topics.name(logical), group)
                                if self._lag is not None else None)
                except Exception as exc:
                    log.info("reconcile: lag of %s on %s unknown (%s)", group, logical, exc)
                    lags.append(None)
            out[stage] = all(v == 0 for v in lags)
        return out

    def _study(self, sid: str, quiet: dict[str, bool], force: bool) -> list[Reissue]:
        st = self.port.get(sid)
        if st.report is not None or st.cancelled or st.error:
            return []
        signature = _signature(st)
        stalled = force or self._seen.get(sid) == signature
        self._seen[sid] = signature
        if not stalled or not any(_missing(st, stage) for stage, idle in quiet.items() if idle):
            return []  # progressing, or what it lacks is still queued somewhere: not lost
        st = self.port.rebuild(sid)  # what the store holds, after the lags were read
        history = self._history(sid)
        done: list[Reissue] = []
        images, total = st.images()
        if quiet["generation"] and _missing(st, "generation"):
            done += self._issue(st, history, "generation", ["submission"],
                                f"{total - images} of {total} images missing from the store and "
                                "no generation work queued", lambda _: self.port.resubmit_missing(st))
        unscored = _missing(st, "scoring")
        if quiet["scoring"] and unscored:
            done += self._issue(st, history, "scoring", [c.name for c in unscored],
                                f"cell(s) {', '.join(c.name for c in unscored)} have every image but "
                                "no scores and no scoring work is queued",
                                lambda items: sum(self.port.reannounce_cell(st, c) for c in unscored
                                                  if c.name in items))
        lost = _missing(st, "training")
        if quiet["training"] and lost:
            done += self._issue(st, history, "training", lost,
                                f"run(s) {', '.join(lost[:5])}{' ...' if len(lost) > 5 else ''} "
                                "launched without a result and no training work is queued",
                                lambda items: self._relaunch(st, set(items)))
        self.port.advance(st)  # what the store already holds may complete the study
        if done:
            self.port.save_history(sid, history)
            self._seen.pop(sid, None)
        return done

    def _relaunch(self, st: StudyState, runs: set[str]) -> int:
        self.port.advance(st, relaunch=runs)
        return len(runs)

    def _issue(self, st: StudyState, history: list[Reissue], stage: str, items: list[str], reason: str,
               act: Any) -> list[Reissue]:
        """Re-issue `items` of `stage` unless each was re-issued MAX_REISSUES times already."""
        tries = {i: sum(1 for r in history if r.stage == stage and i in r.items) for i in items}
        todo = [i for i in items if tries[i] < MAX_REISSUES]
        given_up = [i for i in items if tries[i] >= MAX_REISSUES]
        if given_up:
            log.error("study %s: %s of %s re-issued %d times and still missing; giving up on it "
                      "(see `synscale dlq list --study %s`)", st.study_id, stage, given_up, MAX_REISSUES,
                      st.study_id)
        if not todo:
            return []
        count = int(act(todo))
        entry = Reissue(stage, count, reason, items=todo)
        history.append(entry)
        log.warning("study %s: re-issued %s (%d message(s)): %s", st.study_id, stage, count, reason)
        self.port.event(st, f"re-issued {stage}: {reason}")
        return [entry]

    def _history(self, sid: str) -> list[Reissue]:
        if sid not in self.history:
            self.history[sid] = self.port.load_history(sid)
        return self.history[sid]

    def force_pass(self) -> int:
        """One pass that ignores the progress gate (the queues are known to be idle); re-issues made."""
        if self.port.orch.known_folders is None:
            self.first_pass()
        return sum(len(v) for v in self.run_once(force=True).values())

    def annotate(self, status: study_pb2.StudyStatus) -> None:
        """Add what was re-issued for this study, and why, to its status."""
        try:
            history = self._history(status.study_id)
        except Exception as exc:  # the status must answer even while the store is down
            log.debug("reconcile history of %s unavailable: %s", status.study_id, exc)
            return
        status.reissued.extend(r.proto() for r in history)


def _loop(ref: weakref.ref[Reconciler], interval_s: float) -> None:
    """Start pass (retried until the store answers), then a pass every `interval_s`."""
    wait = 1.0
    while (r := ref()) is not None and r.port.orch.known_folders is None and not r.first_pass():
        del r
        threading.Event().wait(wait)
        wait = min(30.0, wait * 2)
    del r
    first = True
    while (r := ref()) is not None:
        try:
            r.run_once(force=first)
            first = False
        except Exception:
            log.exception("reconcile pass failed")
        del r
        if interval_s <= 0:
            return
        threading.Event().wait(interval_s)


_LOCK = threading.Lock()


def reconciler_for(orch: Orchestrator) -> Reconciler:
    """The orchestrator's reconciler, created once (the worker starts it, status reads it)."""
    with _LOCK:
        reconciler: Reconciler | None = getattr(orch, "_reconciler", None)
        if reconciler is None:
            reconciler = Reconciler(orch)
            orch._reconciler = reconciler  # type: ignore[attr-defined]
        return reconciler


def start_reconciler(ctx: ServiceContext, orch: Orchestrator) -> Reconciler:
    """The periodic reconciler of a service process; the embedded runtime, which pumps
    messages synchronously, runs a forced pass as an idle hook when its queues drain."""
    reconciler = reconciler_for(orch)
    if ctx.config.runtime == "embedded":
        ctx.idle_hooks.append(reconciler.force_pass)
        return reconciler
    # Rebuild every unfinished study now, before the worker subscribes: the first events
    # then find their state ready instead of rebuilding it inside a handler (ADR 0027).
    # A store that is down at start is retried by the thread.
    try:
        reconciler.first_pass()
    except Exception:
        log.exception("reconcile: the first pass failed; the reconciler thread retries it")
    return reconciler.start()
