"""gRPC adapter: StartRun / GetRun (streaming progress) / CancelRun over the RunManager."""

from __future__ import annotations

from collections.abc import Iterator

import grpc

from synscale import layout
from synscale.grpc_server import ServiceBinding, grpc_errors, grpc_stream_errors
from synscale.runtime import ServiceContext
from synscale.v1 import trainer_pb2, trainer_pb2_grpc
from synscale_trainer import jobs
from synscale_trainer.runs import RunManager, build_manager


class TrainerServicer(trainer_pb2_grpc.TrainerServicer):
    def __init__(self, manager: RunManager) -> None:
        self.manager = manager

    @grpc_errors
    def StartRun(
        self, request: trainer_pb2.TrainingJob, context: grpc.ServicerContext
    ) -> trainer_pb2.StartRunResponse:
        return trainer_pb2.StartRunResponse(run_id=self.manager.start(request))

    @grpc_stream_errors
    def GetRun(
        self, request: trainer_pb2.RunRef, context: grpc.ServicerContext
    ) -> Iterator[trainer_pb2.RunProgress]:
        try:
            self.manager.get(request.run_id)
        except KeyError:
            yield self._finished(request)
            return
        yield from self.manager.watch(request.run_id, stop=lambda: not context.is_active())

    @grpc_errors
    def CancelRun(
        self, request: trainer_pb2.RunRef, context: grpc.ServicerContext
    ) -> trainer_pb2.RunProgress:
        return self.manager.cancel(request.run_id)

    def _finished(self, ref: trainer_pb2.RunRef) -> trainer_pb2.RunProgress:
        """A run this process never saw: answer from its stored result, or NOT_FOUND."""
        if ref.study_id and ref.run_id:
            key = layout.run_key(ref.study_id, ref.run_id, jobs.RESULT)
            if self.manager.store.exists(key):
                result = jobs.result_from_json(self.manager.store.get(key))
                return trainer_pb2.RunProgress(
                    run_id=ref.run_id,
                    state=result.status,
                    step=result.steps,
                    total_steps=result.steps,
                    result=result,
                )
        hint = "" if ref.study_id else " (give study_id to look up finished runs)"
        raise KeyError(f"no run {ref.run_id!r}{hint}")


def bindings(ctx: ServiceContext, manager: RunManager | None = None) -> list[ServiceBinding]:
    servicer = TrainerServicer(manager or build_manager(ctx))
    return [ServiceBinding(trainer_pb2_grpc.add_TrainerServicer_to_server, servicer, "synscale.v1.Trainer")]
