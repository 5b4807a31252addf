"""The embedded runtime: every service's handlers in one process over MemoryBus + FileStore.

`EmbeddedRunner` subscribes the subscriptions of each installed service to one in-memory
bus, over a filesystem store, and pumps messages until nothing is left to do. Because all
durable state lives in the store, a study stopped at any point is resumed by a fresh
runner on the same directory: it resubmits the study and every service skips what exists.
"""

from synscale.embedded.runner import EmbeddedRunner, PumpResult, installed_providers
from synscale.embedded.study import StudyOutcome, run_study

__all__ = ["EmbeddedRunner", "PumpResult", "StudyOutcome", "installed_providers", "run_study"]
