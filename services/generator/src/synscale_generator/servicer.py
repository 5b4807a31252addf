"""gRPC `synscale.v1.Generator`: a thin adapter over the job runner.

Generate streams progress (images done of total) and a ShardRef per shard as it lands;
the shards are also announced on shards-ready, exactly as the worker would, so a direct
call and a queued job leave the same state behind. Describe reports the registered
backends, the models this process holds, the device and the batch size in use.
"""

from __future__ import annotations

from collections.abc import Iterator

import grpc

from synscale.errors import InvalidInput
from synscale.grpc_server import ServiceBinding, grpc_errors, grpc_stream_errors
from synscale.runtime import ServiceContext
from synscale.v1 import generator_pb2, generator_pb2_grpc

from .backends import backend_names
from .engine import JobRunner
from .validation import max_images_per_job
from .worker import build_runner

SERVICE_NAME = "synscale.v1.Generator"


class GeneratorServicer(generator_pb2_grpc.GeneratorServicer):
    def __init__(self, runner: JobRunner) -> None:
        self.runner = runner

    @grpc_stream_errors
    def Generate(
        self, request: generator_pb2.GenerateRequest, context: grpc.ServicerContext,
    ) -> Iterator[generator_pb2.GenerateProgress]:
        if not request.HasField("job"):
            raise InvalidInput("job", "the request carries no GenerationJob")
        self.runner.validate(request.job)  # fail before the stream starts
        for progress in self.runner.run([request.job]):
            message = generator_pb2.GenerateProgress(
                done=progress.done, total=progress.total, message=progress.message,
                reannounced=progress.reannounced,
            )
            if progress.shard is not None:
                message.shard.CopyFrom(progress.shard)
            yield message
            if not context.is_active():  # the client went away: stop after this batch
                return

    @grpc_errors
    def Describe(
        self, request: generator_pb2.DescribeRequest, context: grpc.ServicerContext,
    ) -> generator_pb2.DescribeResponse:
        engine = self.runner.engine
        return generator_pb2.DescribeResponse(
            backends=backend_names(), loaded_models=self.runner.models.loaded(),
            device=str(engine.device), batch_size=engine.last_batch_size or engine.default_batch_size,
            max_images_per_job=self.runner.max_images or max_images_per_job(),
        )


def bindings(ctx: ServiceContext, runner: JobRunner | None = None) -> list[ServiceBinding]:
    return [ServiceBinding(generator_pb2_grpc.add_GeneratorServicer_to_server,
                           GeneratorServicer(runner or build_runner(ctx)), SERVICE_NAME)]
