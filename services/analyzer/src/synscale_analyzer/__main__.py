from synscale.assembly import Parts
from synscale_analyzer.orchestrator import Orchestrator
from synscale_analyzer.servicer import bindings
from synscale_analyzer.worker import subscriptions

# the domain objects, built once and handed to both adapters
raise SystemExit(Parts(Orchestrator).serve("analyzer", bindings, subscriptions))
