"""`python -m synscale_generator`: the generator service process (gRPC + Kafka worker)."""

from synscale.service import run_service
from synscale_generator.servicer import bindings
from synscale_generator.worker import subscriptions

raise SystemExit(run_service("generator", bindings, subscriptions))
