from synscale.service import run_service
from synscale_prompter.servicer import bindings
from synscale_prompter.worker import subscriptions

raise SystemExit(run_service("prompter", bindings, subscriptions))
