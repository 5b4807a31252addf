from synscale.service import run_service
from synscale_analyzer.servicer import bindings
from synscale_analyzer.worker import subscriptions

raise SystemExit(run_service("analyzer", bindings, subscriptions))
