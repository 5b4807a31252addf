"""Exception types shared by every layer, so callers can tell bad input from outages."""


class SynscaleError(Exception):
    """Base class of every error synscale raises on purpose."""


class InvalidInput(SynscaleError, ValueError):
    """The caller asked for something malformed; the message names the field."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")


class PreconditionFailed(SynscaleError):
    """The request is well formed but the world is not ready for it (e.g. missing weights)."""


class Unavailable(SynscaleError):
    """A server the operation needs cannot be reached."""
