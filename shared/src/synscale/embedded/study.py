"""Run one study end to end in the embedded runtime (what `synscale study run` and the demo do)."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from synscale.embedded.progress import StageBars
from synscale.embedded.runner import EmbeddedRunner, Provider, PumpResult
from synscale.runtime import Subscription
from synscale.study import StudySpec

log = logging.getLogger(__name__)


@dataclass
class StudyOutcome:
    study_id: str
    state: str  # done | stopped | stalled | failed
    report_html: Path | None
    report_json: Path | None
    seconds: float
    pump: PumpResult
    dead_letters: list[tuple[str, str]] = field(default_factory=list)
    stages: dict[str, tuple[int, int, str]] = field(default_factory=dict)


def run_study(
    spec: StudySpec, data_dir: Path | str, *, providers: Mapping[str, Provider] | None = None,
    progress: bool = True, max_messages: int | None = None, partitions: int = 3,
) -> StudyOutcome:
    """Submit `spec` (or resubmit: resume) and pump until its report is written.

    `max_messages` stops part-way (state "stopped"), which tests use to interrupt a study.
    "stalled" means every queue drained without a report: see `dead_letters`.
    """
    from synscale.v1 import study_pb2

    start = time.monotonic()
    bars = StageBars(spec.study_id, enabled=progress)
    listener = Subscription(("study-events",), "embedded-progress", bars.handle)
    with EmbeddedRunner(data_dir, providers, listeners=[listener], partitions=partitions) as runner:
        if "analyzer" not in runner.providers:
            raise RuntimeError("the embedded runtime needs synscale-analyzer installed (it orchestrates)")
        from synscale_analyzer.orchestrator import submit_study

        def reported() -> study_pb2.ReportReady | None:
            for value in runner.messages("reports"):
                ready = study_pb2.ReportReady.FromString(value)
                if ready.study_id == spec.study_id:
                    return ready
            return None

        submit_study(runner.ctx, spec)
        def over() -> bool:
            return reported() is not None or bars.finished in ("failed", "cancelled")

        with bars:
            result = runner.pump(until=over, max_messages=max_messages)
            # Drained without a report: the analyzer's reconciler re-issues lost work (ADR 0016).
            while result.stopped_by != "max_messages" and not over() and runner.ctx.run_idle_hooks():
                result = runner.pump(until=over, max_messages=max_messages)
            runner.drain("listener")  # the last events (analysis, done) reach the bars
        ready = reported()
        base = runner.store.root / runner.store.bucket
        if ready is not None:
            state = "done"
        elif bars.finished in ("failed", "cancelled"):
            state = bars.finished
        else:
            state = "stopped" if result.stopped_by == "max_messages" else "stalled"
        return StudyOutcome(
            study_id=spec.study_id, state=state,
            report_html=base / ready.html_key if ready else None,
            report_json=base / ready.json_key if ready else None,
            seconds=time.monotonic() - start, pump=result, dead_letters=runner.dead_letters(),
            stages=dict(bars.last),
        )
