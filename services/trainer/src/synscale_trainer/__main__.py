from synscale.assembly import Parts
from synscale_trainer.runs import build_manager
from synscale_trainer.servicer import bindings
from synscale_trainer.worker import subscriptions

# the domain objects, built once and handed to both adapters
raise SystemExit(Parts(build_manager).serve("trainer", bindings, subscriptions))
