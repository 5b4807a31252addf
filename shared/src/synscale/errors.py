"""Exception types shared by every layer, so callers can tell bad input from outages.

Two kinds of failure matter to a worker (ADR 0014):

- *transient*: the world is briefly broken — the store or the broker does not answer, a
  request timed out, the server throttles or answers 5xx. Waiting is the fix, so the
  consume loop backs off and retries for as long as it lasts and never dead-letters.
- *permanent*: the message itself is bad, or the code cannot handle it. Retrying a few
  times guards against a fluke; then the message is dead-lettered with its reason.

`is_transient` is the one place that draws the line, so every service draws it the same way.
"""

from __future__ import annotations


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


class Transient(SynscaleError):
    """A failure that goes away by itself (outage, timeout, throttling): wait and retry."""


class Unavailable(Transient):
    """A server the operation needs cannot be reached."""


# Raw exception types that mean "the network or a server hiccupped", wherever they escape
# from (a client library that wraps less carefully than ours, a socket read in a loader).
_TRANSIENT_BUILTINS: tuple[type[BaseException], ...] = (ConnectionError, TimeoutError)


def _one_is_transient(exc: BaseException) -> bool:
    if isinstance(exc, (Transient, *_TRANSIENT_BUILTINS)):
        return True
    if isinstance(exc, SynscaleError):
        return False  # our own errors say what they are
    # kafka-python marks its retriable errors (timeouts, no broker, not leader) itself;
    # checked by attribute so this module needs no client library.
    return type(exc).__module__.startswith("kafka") and bool(getattr(exc, "retriable", False))


def is_transient(exc: BaseException) -> bool:
    """True when `exc`, or an error it was raised from, is an outage rather than bad input.

    The cause chain is followed because handlers wrap: a loader that turns a
    StoreUnavailable into a RuntimeError still failed because the store was down.
    A permanent error explicitly raised by our code (PoisonMessage, InvalidInput, ...)
    stops the walk: it said what it is.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _one_is_transient(current):
            return True
        if isinstance(current, SynscaleError) and not isinstance(current, Transient):
            return False
        current = current.__cause__ or current.__context__
    return False


def failure_kind(exc: BaseException) -> str:
    """A short, bounded label for metrics and dead letters: the exception's class name."""
    return type(exc).__name__
