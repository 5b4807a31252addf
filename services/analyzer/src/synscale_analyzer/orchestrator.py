"""Study orchestration: follow every result event, launch the next stage, write the report.

The analyzer owns a study's state. It consumes study submissions, shard-ready events,
score results and run results; it launches a training job as soon as the data that job
needs exist (every class of its cell has images 0..N-1); and once every image, score and
run is in, it fits the scaling laws and writes the report.

Restart safety: the state of a study is rebuilt from the store (shards, scores, run
results, launch markers, the report) in one pass over its listing — for every unfinished
study before the service subscribes (the reconciler's first pass, ADR 0027), otherwise the
first time this process hears of it — then kept current by events. A training job is
published, flushed, and only then marked launched in the store, so a crash can at worst
launch a job twice (the trainer re-announces a finished run instead of retraining it) and
never forgets one. A new submission of a study resumes it: unfinished runs are launched
again, since their messages may have been lost with an embedded bus.
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from google.protobuf.message import Message as ProtoMessage

from synscale import codecs, ids, layout
from synscale.bus.base import MISSING_ONLY_HEADER, Message, PoisonMessage
from synscale.cells import Cell as CellKey
from synscale.errors import InvalidInput, is_transient
from synscale.runtime import ServiceContext
from synscale.store.base import StoreError
from synscale.study import StudySpec, parse_study
from synscale.v1 import generator_pb2, scorer_pb2, study_pb2, trainer_pb2
from synscale_analyzer.state import StudyState

if TYPE_CHECKING:
    from synscale_analyzer.planning import PlanOptions, PlanOutcome

log = logging.getLogger(__name__)
CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".md": "text/markdown; charset=utf-8",
                 ".json": "application/json", ".csv": "text/csv", ".png": "image/png"}


# the analyzer's own keys, named where every key is (synscale.layout)
spec_key, launched_key, cancelled_key = layout.spec_key, layout.launched_key, layout.cancelled_key


def submit_study(ctx: ServiceContext, spec: StudySpec) -> study_pb2.StudySubmission:
    """Store the spec where every service reads it, then announce it on "study-submissions".

    Submitting a study that exists resumes it: finished work is found in the store.
    """
    text = spec.to_yaml()
    ctx.store.put_if_changed(spec_key(spec.study_id), text.encode(), content_type="application/yaml")
    submission = study_pb2.StudySubmission(
        study_id=spec.study_id, spec_yaml=text, submitted_at=datetime.now(UTC).isoformat())
    ctx.publish("study-submissions", submission.SerializeToString(), key=spec.study_id)
    ctx.bus.flush()
    return submission


def _decode(kind: type[ProtoMessage], value: bytes) -> ProtoMessage:
    try:
        return kind.FromString(value)
    except DecodeError as exc:
        raise PoisonMessage(f"not a {kind.__name__}: {exc}") from None


def score_from_json(data: bytes) -> scorer_pb2.ScoreResult | None:
    """A cell's scores.json through the one codec (synscale.codecs); None when unreadable."""
    try:
        return codecs.score_result_from_json(data)
    except ValueError as exc:
        log.warning("%s", exc)
        return None


def _run_result(data: bytes) -> trainer_pb2.RunResult | None:
    try:
        return codecs.run_result_from_json(data)
    except ValueError as exc:
        log.warning("unreadable result.json in the store: %s", exc)
        return None


class Orchestrator:
    """All studies this analyzer process follows; handlers and the gRPC servicer share it."""

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self._lock = threading.RLock()
        self._studies: dict[str, StudyState] = {}
        self._changed = threading.Condition(self._lock)
        # Study folders in the store, once the reconciler listed them at start: an event
        # for a study outside it is junk and is dropped without touching the store.
        self.known_folders: set[str] | None = None

    # -- state ------------------------------------------------------------------------
    def study(self, study_id: str, spec: StudySpec | None = None) -> StudyState:
        """The state of a study, rebuilt from the store the first time it is asked for.

        The rebuild (a listing of the study's prefix) runs outside the lock, so GetStatus
        of other studies never waits on it; two threads that rebuild at once build the
        same state and the first one in wins. Raises KeyError when the store has no spec
        for `study_id` and none is given.
        """
        with self._lock:
            st = self._studies.get(study_id)
        if st is not None:
            return st
        if spec is None:
            spec = self._stored_spec(study_id)
        built = self._rebuild(spec)
        with self._lock:
            st = self._studies.setdefault(study_id, built)
            if st is built and st.report is not None:  # finished before this process started
                self._announce_report(st)
            return st

    def _stored_spec(self, study_id: str) -> StudySpec:
        info = self.ctx.store.stat(spec_key(study_id))
        if info is None:
            raise KeyError(f"unknown study {study_id!r}: no {spec_key(study_id)} in the store")
        spec = parse_study(self.ctx.store.get(spec_key(study_id)).decode(), spec_key(study_id))
        if spec.study_id != study_id:
            raise InvalidInput("study_id", f"{spec_key(study_id)} hashes to {spec.study_id}")
        return spec

    def _rebuild(self, spec: StudySpec) -> StudyState:
        """What the store already holds for this study: the same updates events would make."""
        store, sid = self.ctx.store, spec.study_id
        st = StudyState(spec, store.bucket)
        by_path = {(c.path, ids.safe_component(cid)): (c, cid) for c in st.cells for cid, _ in st.classes}
        shards = 0
        for key in store.keys(layout.images_prefix(sid)):  # names only: one pass, no per-object stat
            shard = layout.parse_shard_key(key)
            hit = by_path.get((shard.cell_path, shard.class_folder)) if shard else None
            if shard is not None and hit is not None:
                st.add_shard(hit[0], hit[1], shard.start, shard.count)
                shards += 1
        for cell in st.cells:
            key = layout.score_key(sid, cell.generator, cell.cfg, cell.strategy, layout.SCORES)
            if store.exists(key):
                score = score_from_json(store.get(key))
                if score is not None and CellKey.of(score.cell) == cell:
                    st.add_score(score)
        for key in store.keys(layout.runs_prefix(sid)):
            parsed = layout.parse_run_key(sid, key)
            if parsed is not None and parsed[1] == layout.RESULT:
                result = _run_result(store.get(key))
                if result is not None and result.status == "done":
                    st.add_result(result)
        markers = {layout.parse_launched_key(sid, k) for k in store.keys(layout.launched_prefix(sid))}
        st.launched |= {m for m in markers if m} & set(st.runs)
        st.cancelled = store.exists(cancelled_key(sid))
        if st.complete() and store.exists(layout.report_key(sid, "report.json")):
            st.report = self._report_ref(sid)
        log.info("study %s rebuilt from the store: %d shards, %d scores, %d/%d runs done, %d launched",
                 sid, shards, len(st.scores), len(st.results), len(st.runs), len(st.launched))
        return st

    # -- the event handler ------------------------------------------------------------
    def handle(self, message: Message) -> None:
        """Dispatch one event by topic (one consumer group follows all four)."""
        topics = self.ctx.topics
        handlers = {
            topics.name("study-submissions"): self.on_submission,
            topics.name("shards-ready"): self.on_shard,
            topics.name("scores"): self.on_score,
            topics.name("run-results"): self.on_run_result,
        }
        handler = handlers.get(message.topic)
        if handler is None:
            raise PoisonMessage(f"the analyzer does not follow topic {message.topic}")
        if any(k == MISSING_ONLY_HEADER for k, _ in message.headers):
            return  # the reconciler's own re-submission, meant for the prompter (ADR 0016)
        handler(message.value)

    def on_submission(self, value: bytes) -> None:
        sub = _decode(study_pb2.StudySubmission, value)
        assert isinstance(sub, study_pb2.StudySubmission)
        try:
            spec = parse_study(sub.spec_yaml, f"study {sub.study_id or '<unnamed>'}")
        except InvalidInput as exc:
            raise PoisonMessage(str(exc)) from None
        self.ctx.store.put_if_changed(spec_key(spec.study_id), spec.to_yaml().encode(),
                                      content_type="application/yaml")
        if self.known_folders is not None:
            self.known_folders.add(ids.safe_component(spec.study_id))
        st = self.study(spec.study_id, spec)  # a first rebuild lists the store: not under the lock
        with self._lock:
            if st.cancelled:
                self.ctx.store.delete(cancelled_key(st.study_id))
                st.cancelled = False
            # Resume: launch again whatever has no result (its message may be gone).
            st.unlaunch(st.launched - set(st.results))
            self._event(st, "submitted", f"{len(st.cells)} cells, {len(st.runs)} runs planned")
            for stage in ("generation", "scoring", "training"):
                self._event(st, stage, "")  # every bar starts with its total
            finish = self._advance(st)
            if st.report is not None:  # already finished: say so again for whoever waits
                self._announce_report(st)
        self._finish_if(st, finish)

    def on_shard(self, value: bytes) -> None:
        ready = _decode(generator_pb2.ShardReady, value)
        assert isinstance(ready, generator_pb2.ShardReady)
        ref = ready.shard
        sid = ref.job.study_id
        st = self._known(sid)
        if st is None:
            return
        shard = layout.parse_shard_key(ref.key)
        start, count = ((shard.start, shard.count) if shard
                        else (int(ref.job.seed_start), int(ref.count or ref.job.seed_count)))
        cell = CellKey.of(ref.job.cell)
        with self._lock:
            if st.add_shard(cell, ref.job.class_id, start, count):
                self._event(st, "generation", f"{cell.name} {ref.job.class_id} [{start}, {start + count})")
            finish = self._advance(st)
        self._finish_if(st, finish)

    def on_score(self, value: bytes) -> None:
        result = _decode(scorer_pb2.ScoreResult, value)
        assert isinstance(result, scorer_pb2.ScoreResult)
        st = self._known(result.study_id)
        if st is None:
            return
        with self._lock:
            if st.add_score(result):
                self._event(st, "scoring", ids.cell_name(result.cell.generator, result.cell.cfg,
                                                         result.cell.strategy))
            finish = self._advance(st)
        self._finish_if(st, finish)

    def on_run_result(self, value: bytes) -> None:
        result = _decode(trainer_pb2.RunResult, value)
        assert isinstance(result, trainer_pb2.RunResult)
        st = self._known(result.study_id)
        if st is None:
            return
        with self._lock:
            if st.add_result(result):
                detail = result.run_id if result.status == "done" else f"{result.run_id} {result.status}: " \
                    f"{result.error[:200]}"
                self._event(st, "training", detail)
                self._series_fit(st, result.run_id)
            finish = self._advance(st)
        self._finish_if(st, finish)

    def _series_fit(self, st: StudyState, run_id: str) -> None:
        """Once every run of a series is in, announce its slope on the ID set (no bootstrap).

        The report refits everything with intervals at the end; this gives a watcher the
        scaling ability of each series as soon as it exists.
        """
        from synscale_analyzer.analysis import metric_value
        from synscale_analyzer.fits import fit
        from synscale_analyzer.records import run_record

        series = st.series_of(run_id)
        if not all(p.run_id in st.results for p in series):
            return
        id_set = st.spec.evaluation.id
        records = [run_record(p, st.results[p.run_id]) for p in series]
        points = [(r.n, v) for r in records if r.status == "done"
                  and (v := metric_value(r, id_set, st.spec.analysis.metric)) is not None]
        f = fit([n for n, _ in points], [v for _, v in points], "power_law", bootstrap=0)
        label = records[0].cell or "real"
        if records[0].source == "mixed":
            label += f" + {records[0].real_per_class} real"
        if f.ok:
            self._event(st, "fits", f"{label} ({records[0].recipe}): alpha = {f.alpha:.3f} on {id_set}")

    def _known(self, study_id: str) -> StudyState | None:
        folders = self.known_folders
        if folders is not None and study_id not in self._studies and \
                ids.safe_component(study_id) not in folders:
            log.debug("event for unknown study %s dropped", study_id)
            return None
        try:
            return self.study(study_id)
        except KeyError:
            log.debug("event for study %s, which has no spec in the store; ignored", study_id)
            return None

    # -- what happens next ------------------------------------------------------------
    def _advance(self, st: StudyState) -> bool:
        """Launch every run whose data exist; True when the report is now to be written.

        Handlers call this for every event, news or not: a restarted analyzer rebuilds its
        state from the store, where the work may already be complete, so the events it then
        receives again are all duplicates — and one of them must still launch the runs and
        write the report that the killed process did not get to. Called under the lock; the
        report itself is written by `_finish_if` after the lock is released.
        """
        if st.cancelled:
            return False
        ready = st.ready_runs()
        for run in ready:
            self.ctx.publish("training-jobs", run.job.SerializeToString(), key=run.run_id)
        if ready:
            self.ctx.bus.flush()  # published (durable) before it is marked launched
            for run in ready:
                marker = json_format.MessageToJson(run.job, preserving_proto_field_name=True, sort_keys=True)
                self.ctx.store.put_if_changed(launched_key(st.study_id, run.run_id), marker.encode(),
                                              content_type="application/json")
                st.launched.add(run.run_id)
            self._event(st, "training", f"launched {len(ready)} run(s)")
        finish = st.report is None and not st.error and not st.rendering and st.complete()
        if finish:
            st.rendering = True  # claimed: a concurrent event does not render a second time
            self._event(st, "analysis", "fitting scaling laws and writing the report")
        self._changed.notify_all()
        return finish

    def _finish_if(self, st: StudyState, finish: bool) -> None:
        """Fit, plot and write the report outside the lock (seconds to minutes of CPU and
        store I/O): GetStatus, WatchStudy and the other studies' events go on meanwhile."""
        if not finish:
            return
        from synscale_analyzer.analysis import analyze
        from synscale_analyzer.records import analysis_input
        from synscale_analyzer.report import render
        from synscale_analyzer.samples import sample_grids

        sid = st.study_id
        with self._lock:
            inputs = analysis_input(st)  # a snapshot: the study is complete, nothing changes it
        try:
            analysis = analyze(inputs)
            spec = st.spec
            grids = sample_grids(
                self.ctx.store, sid, [g.name for g in spec.generators],
                {g.name: list(g.cfg) for g in spec.generators}, spec.strategies, st.classes)
            files = render(analysis, grids)
            for name, data in sorted(files.items()):
                kind = CONTENT_TYPES.get(name[name.rfind("."):], "application/octet-stream")
                self.ctx.store.put_if_changed(layout.report_key(sid, name), data, content_type=kind)
        except Exception as exc:
            retry = isinstance(exc, StoreError) or is_transient(exc)
            with self._lock:
                st.rendering = False
                if not retry:
                    st.error = f"analysis failed: {type(exc).__name__}: {exc}"
                    self._event(st, "failed", st.error)
            if retry:
                raise  # the worker retries the event (waits out an outage: ADR 0014)
            log.exception("study %s: analysis failed", sid)
            return
        with self._lock:
            st.rendering = False
            st.report = self._report_ref(sid)
            log.info("study %s: report written to %s", sid, st.report.html_key)
            self._event(st, "analysis", f"report written ({len(files)} files)")
            self._announce_report(st)

    def _report_ref(self, sid: str) -> study_pb2.ReportReady:
        return study_pb2.ReportReady(
            study_id=sid, bucket=self.ctx.store.bucket, html_key=layout.report_key(sid, "report.html"),
            markdown_key=layout.report_key(sid, "report.md"), json_key=layout.report_key(sid, "report.json"))

    def _announce_report(self, st: StudyState) -> None:
        assert st.report is not None
        self.ctx.publish("reports", st.report.SerializeToString(), key=st.study_id)
        self._event(st, "done", st.report.html_key)
        self.ctx.bus.flush()

    def _event(self, st: StudyState, stage: str, detail: str) -> None:
        done, total = st.progress().get(stage, (0, 0))
        event = study_pb2.StudyEvent(study_id=st.study_id, stage=stage, detail=detail, done=done, total=total)
        self.ctx.publish("study-events", event.SerializeToString(), key=st.study_id)
        self._changed.notify_all()

    # -- the API the servicer and the CLI use ------------------------------------------
    def submit(self, spec: StudySpec) -> study_pb2.StudyStatus:
        submit_study(self.ctx, spec)
        st = self.study(spec.study_id, spec)
        with self._lock:
            return st.status()

    def status(self, study_id: str) -> study_pb2.StudyStatus:
        from synscale_analyzer.reconcile import reconciler_for

        st = self.study(study_id)
        with self._lock:
            status = st.status()
        reconciler_for(self).annotate(status)  # what was re-issued, and why
        return status

    def wait_for_change(self, timeout_s: float) -> None:
        with self._changed:
            self._changed.wait(timeout_s)

    def report(self, study_id: str) -> study_pb2.ReportReady:
        st = self.study(study_id)
        with self._lock:
            if st.report is None:
                from synscale.errors import PreconditionFailed

                raise PreconditionFailed(f"study {study_id} has no report yet (state {st.state})")
            return st.report

    def plan(self, study_id: str, opts: PlanOptions) -> PlanOutcome:
        """The planner on the study's finished runs (a pilot need not be complete)."""
        from synscale_analyzer.planning import plan_outcome
        from synscale_analyzer.records import analysis_input

        st = self.study(study_id)
        with self._lock:
            inputs = analysis_input(st)
        return plan_outcome(inputs, st.spec, opts)

    def cancel(self, study_id: str) -> study_pb2.StudyStatus:
        """Stop launching work for a study; queued jobs of other services still drain."""
        st = self.study(study_id)
        with self._lock:
            if st.report is None and not st.cancelled:
                marker = json.dumps({"cancelled_at": datetime.now(UTC).isoformat()})
                self.ctx.store.put(cancelled_key(study_id), marker.encode(), content_type="application/json")
                st.cancelled = True
                self._event(st, "cancelled", "cancelled by request")
                self.ctx.bus.flush()
            return st.status()
