from synscale.assembly import Parts
from synscale_scorer.servicer import bindings, build_service
from synscale_scorer.worker import subscriptions

# the domain objects, built once and handed to both adapters
raise SystemExit(Parts(build_service).serve("scorer", bindings, subscriptions))
