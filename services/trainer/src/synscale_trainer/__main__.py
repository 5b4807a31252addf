from synscale.service import run_service
from synscale_trainer.servicer import bindings
from synscale_trainer.worker import subscriptions

raise SystemExit(run_service("trainer", bindings, subscriptions))
