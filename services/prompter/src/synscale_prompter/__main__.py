from synscale.assembly import Parts
from synscale_prompter.config import PrompterConfig
from synscale_prompter.servicer import bindings
from synscale_prompter.worker import subscriptions

# the domain objects, built once and handed to both adapters
raise SystemExit(Parts(lambda _ctx: PrompterConfig.from_env()).serve("prompter", bindings, subscriptions))
