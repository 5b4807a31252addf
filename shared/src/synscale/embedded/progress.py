"""Rich progress bars per study stage, fed by StudyEvents (the same events `study watch` shows).

Each stage gets a bar with done/total, rate and ETA; the bars are driven by the events
the services publish on "study-events", so what the embedded runner shows is exactly what
a distributed deployment reports.
"""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from synscale.bus.base import Message

STAGE_ORDER = ("prompts", "generation", "scoring", "training", "analysis")
UNITS = {"prompts": "jobs", "generation": "images", "scoring": "cells", "training": "runs",
         "analysis": "report"}


class RateColumn(ProgressColumn):
    """Items per second (or per minute when slow), from rich's moving speed estimate."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        if not speed:
            return Text("   –   ", style="progress.data.speed")
        unit = task.fields.get("unit", "")
        text = f"{speed:.1f} {unit}/s" if speed >= 0.5 else f"{speed * 60:.1f} {unit}/min"
        return Text(text, style="progress.data.speed")


class StageBars:
    """One bar per stage; `handle` is a bus handler for the study-events topic."""

    def __init__(self, study_id: str, console: Console | None = None, enabled: bool = True) -> None:
        self.study_id = study_id
        self.enabled = enabled
        console = console or Console(stderr=True)
        columns: list[ProgressColumn | str] = [
            TextColumn("[bold]{task.description:<10}"), BarColumn(bar_width=24), MofNCompleteColumn(),
            RateColumn(), TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
        ]
        if console.width >= 120:  # room for what happened last
            columns.append(TextColumn("[dim]{task.fields[detail]}", justify="left"))
        self.progress = Progress(*columns, console=console, transient=False, disable=not enabled)
        self.tasks: dict[str, TaskID] = {}
        self.last: dict[str, tuple[int, int, str]] = {}
        self.finished = ""  # "done", "failed" or "cancelled" once the study says so

    def __enter__(self) -> StageBars:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def _task(self, stage: str) -> TaskID:
        if stage not in self.tasks:
            # Create bars in pipeline order, whatever order the first events arrive in.
            for s in STAGE_ORDER[: STAGE_ORDER.index(stage) + 1] if stage in STAGE_ORDER else [stage]:
                if s not in self.tasks:
                    self.tasks[s] = self.progress.add_task(s, total=None, detail="", unit=UNITS.get(s, ""))
        return self.tasks[stage]

    def update(self, stage: str, done: int, total: int, detail: str = "") -> None:
        self.last[stage] = (done, total, detail)
        if stage in ("done", "failed", "cancelled"):
            self.finished = stage
            return
        if stage not in STAGE_ORDER:
            return
        self.progress.update(self._task(stage), completed=done, total=total or None, detail=detail[-48:])

    def handle(self, message: Message) -> None:
        from synscale.v1 import study_pb2

        event = study_pb2.StudyEvent.FromString(message.value)
        if event.study_id == self.study_id:
            self.update(event.stage, int(event.done), int(event.total), event.detail)
