"""Kafka/embedded adapter: the analyzer follows submissions, shards, scores and run results.

One consumer group reads all four topics so one handler sees a study's events in order
per partition and the state is touched by one thread. Run a single analyzer replica per
study set: its state is rebuilt from the store, so a restart loses nothing.
"""

from __future__ import annotations

from synscale.bus.base import RetryPolicy
from synscale.runtime import ServiceContext, Subscription
from synscale_analyzer.orchestrator import Orchestrator
from synscale_analyzer.reconcile import start_reconciler

GROUP = "analyzer"
TOPICS = ("study-submissions", "shards-ready", "scores", "run-results")


def subscriptions(ctx: ServiceContext, orch: Orchestrator | None = None) -> list[Subscription]:
    """The worker over `orch` (the one the servicer shares; the embedded runner builds its own)."""
    orch = orch or Orchestrator(ctx)
    start_reconciler(ctx, orch)  # re-issues lost work: at start, then periodically (ADR 0016)
    return [Subscription(TOPICS, GROUP, orch.handle, RetryPolicy(max_attempts=3, initial_backoff_s=0.5))]
