"""Kafka adapter: consumes "shards-ready" (group "scorer"), publishes ScoreResult on "scores".

Per ShardReady: the shard's partial is computed and stored idempotently; when the cell's
partials cover every class's seed range (see service.py; tracked per event, not re-listed:
ADR 0028), the cell is aggregated and the ScoreResult published. A marker `published.json`
(the sha256 of scores.json) records the publication, so redelivered or late duplicate
events do not publish again, while a changed result (a regenerated shard) does. A crash
between publishing and writing the marker republishes once: at-least-once, with identical
content.
"""

from __future__ import annotations

import hashlib
import logging

from google.protobuf.message import DecodeError

from synscale.bus.base import Message, PoisonMessage
from synscale.errors import InvalidInput
from synscale.runtime import ServiceContext, Subscription
from synscale.v1 import generator_pb2
from synscale_scorer.plan import Cell
from synscale_scorer.service import ScorerService, ShardInfo

log = logging.getLogger(__name__)
GROUP = "scorer"


class ShardReadyHandler:
    def __init__(self, ctx: ServiceContext, service: ScorerService | None = None) -> None:
        self.ctx = ctx
        self.service = service or ScorerService(ctx.store)
        self.published = 0

    def __call__(self, message: Message) -> None:
        try:
            ready = generator_pb2.ShardReady.FromString(message.value)
        except DecodeError as exc:
            raise PoisonMessage(f"not a ShardReady: {exc}") from None
        if not ready.HasField("shard"):
            raise PoisonMessage("ShardReady has no shard")
        ref = ready.shard
        try:
            shard = ShardInfo.of_ref(ref)
            if not ref.job.study_id:
                raise InvalidInput("shard.job.study_id", "is empty")
            cell = Cell.requested(ref.job.cell)
            if ref.bucket and ref.bucket != self.ctx.store.bucket:
                raise InvalidInput("shard.bucket", f"{ref.bucket!r} is not this scorer's bucket "
                                   f"{self.ctx.store.bucket!r}")
            plan = self.service.plan(ref.job.study_id, cell)
            if shard.class_id not in plan.labels:
                raise InvalidInput("shard.job.class_id", f"{shard.class_id!r} is not a class of the study")
        except InvalidInput as exc:
            raise PoisonMessage(str(exc)) from None
        wrote = self.service.ensure_partial(plan, shard)
        if not self.service.note_partial(plan, shard):  # incremental: no listing per event
            return
        marker_key = plan.key("published.json")
        store = self.ctx.store
        if not wrote and store.exists(marker_key):
            return
        names = self.service.partial_names(plan)  # once the cell looks complete: aggregate what is there
        if not self.service.complete(plan, names):
            self.service.progress.forget(plan.study_id, plan.cell)
            return
        scores = self.service.aggregate(plan, names)
        result, _ = self.service.write_outputs(plan, scores)
        digest = hashlib.sha256(scores.to_json()).hexdigest().encode()
        if store.exists(marker_key) and store.get(marker_key) == digest:
            return
        self.ctx.publish("scores", result.SerializeToString(), key=f"{plan.study_id}/{plan.cell}")
        self.ctx.bus.flush()
        store.put(marker_key, digest, content_type="text/plain")
        self.published += 1
        log.info("scored cell %s of %s: %d images, macro-F1 %.3f, FID %.2f",
                 plan.cell, plan.study_id, scores.scored, scores.macro_f1, scores.fid)


def subscriptions(ctx: ServiceContext, service: ScorerService | None = None) -> list[Subscription]:
    """The worker over `service` (shared with the servicer: its networks load once)."""
    return [Subscription(("shards-ready",), GROUP, ShardReadyHandler(ctx, service))]
