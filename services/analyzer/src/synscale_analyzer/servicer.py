"""gRPC `Analyzer`: submit, follow, fetch the report of and cancel studies (distributed runtime).

A thin adapter over the Orchestrator the worker also drives, so a status answered here is
the state the event handler keeps.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import grpc

from synscale.grpc_server import ServiceBinding, grpc_errors, grpc_stream_errors
from synscale.runtime import ServiceContext
from synscale.study import parse_study
from synscale.v1 import study_pb2, study_pb2_grpc
from synscale_analyzer.orchestrator import Orchestrator

TERMINAL = ("done", "failed", "cancelled")


class AnalyzerServicer(study_pb2_grpc.AnalyzerServicer):
    def __init__(self, orchestrator: Orchestrator, watch_interval_s: float = 0.5) -> None:
        self.orch = orchestrator
        self.watch_interval_s = watch_interval_s

    @grpc_errors
    def SubmitStudy(self, request: study_pb2.SubmitStudyRequest, context: grpc.ServicerContext
                    ) -> study_pb2.StudyStatus:
        spec = parse_study(request.spec_yaml, "spec_yaml")
        return self.orch.submit(spec)

    @grpc_errors
    def GetStatus(self, request: study_pb2.StudyRef, context: grpc.ServicerContext) -> study_pb2.StudyStatus:
        return self.orch.status(_study_id(request))

    @grpc_stream_errors
    def WatchStudy(self, request: study_pb2.StudyRef, context: grpc.ServicerContext
                   ) -> Iterator[study_pb2.StudyStatus]:
        """A status whenever it changes, until the study reaches a terminal state."""
        study_id = _study_id(request)
        last = None
        while context.is_active():
            status = self.orch.status(study_id)
            if status != last:
                yield status
                last = status
            if status.state in TERMINAL:
                return
            started = time.monotonic()
            self.orch.wait_for_change(self.watch_interval_s)
            if time.monotonic() - started < 0.05:
                time.sleep(0.05)  # many changes at once: coalesce them

    @grpc_errors
    def GetReport(self, request: study_pb2.StudyRef, context: grpc.ServicerContext) -> study_pb2.ReportReady:
        return self.orch.report(_study_id(request))

    @grpc_errors
    def CancelStudy(self, request: study_pb2.StudyRef, context: grpc.ServicerContext
                    ) -> study_pb2.StudyStatus:
        return self.orch.cancel(_study_id(request))


    @grpc_errors
    def PlanStudy(self, request: study_pb2.PlanRequest, context: grpc.ServicerContext) -> study_pb2.PlanReply:
        from synscale_analyzer.planning import options_of, reply_of

        study_id = _study_id(study_pb2.StudyRef(study_id=request.study_id))
        return reply_of(study_id, self.orch.plan(study_id, options_of(request)))


def _study_id(ref: study_pb2.StudyRef) -> str:
    from synscale.errors import InvalidInput

    if not ref.study_id.strip():
        raise InvalidInput("study_id", "must not be empty")
    return ref.study_id.strip()


def bindings(ctx: ServiceContext, orch: Orchestrator | None = None) -> list[ServiceBinding]:
    return [ServiceBinding(study_pb2_grpc.add_AnalyzerServicer_to_server,
                           AnalyzerServicer(orch or Orchestrator(ctx)), "synscale.v1.Analyzer")]
