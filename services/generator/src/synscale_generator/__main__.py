"""`python -m synscale_generator`: the generator service process (gRPC + Kafka worker)."""

from synscale.assembly import Parts
from synscale_generator.servicer import bindings
from synscale_generator.worker import build_runner, subscriptions

# the domain objects, built once and handed to both adapters
raise SystemExit(Parts(build_runner).serve("generator", bindings, subscriptions))
