from synscale.service import run_service
from synscale_scorer.servicer import bindings
from synscale_scorer.worker import subscriptions

raise SystemExit(run_service("scorer", bindings, subscriptions))
