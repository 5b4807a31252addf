"""gRPC adapter: synscale.v1.Scorer (ScoreShards, GetScores) over ScorerService."""

from __future__ import annotations

from typing import Any

import grpc

from synscale.errors import InvalidInput
from synscale.grpc_server import ServiceBinding, grpc_errors
from synscale.runtime import ServiceContext
from synscale.v1 import scorer_pb2, scorer_pb2_grpc
from synscale_scorer.plan import Cell
from synscale_scorer.service import ScorerService, ShardInfo, study_key


class ScorerServicer(scorer_pb2_grpc.ScorerServicer):
    def __init__(self, service: ScorerService) -> None:
        self.service = service

    @grpc_errors
    def ScoreShards(self, request: Any, context: grpc.ServicerContext) -> Any:
        if not request.study_id:
            raise InvalidInput("study_id", "is required")
        cell = Cell.requested(request.cell)
        if not request.shards:
            raise InvalidInput("shards", "at least one shard is required")
        shards = [ShardInfo.of_ref(ref, f"shards[{i}]") for i, ref in enumerate(request.shards)]
        svc = self.service
        if svc.store.exists(study_key(request.study_id)):
            plan = svc.plan(request.study_id, cell)
        else:
            plan = svc.plan_from_shards(request.study_id, cell, shards)
        _, result = svc.score_shards(plan, shards)
        return result

    @grpc_errors
    def GetScores(self, request: Any, context: grpc.ServicerContext) -> Any:
        if not request.study_id:
            raise InvalidInput("study_id", "is required")
        _, result = self.service.get_scores(request.study_id, Cell.requested(request.cell))
        return result


def build_service(ctx: ServiceContext) -> ScorerService:
    return ScorerService(ctx.store)


def bindings(ctx: ServiceContext, service: ScorerService | None = None) -> list[ServiceBinding]:
    servicer = ScorerServicer(service or build_service(ctx))
    return [ServiceBinding(scorer_pb2_grpc.add_ScorerServicer_to_server, servicer, "synscale.v1.Scorer")]


__all__ = ["ScorerServicer", "bindings", "scorer_pb2"]
