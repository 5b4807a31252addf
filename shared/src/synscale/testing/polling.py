"""Waiting in tests for something another process or thread does, bounded in time.

Tests against real servers cannot know when an effect lands; they poll, and fail naming
what they waited for instead of hanging. (A timeout here is a failure, not a speed claim.)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(check: Callable[[], T], what: str, timeout_s: float = 120.0, interval_s: float = 0.2) -> T:
    """`check()`'s first truthy value; AssertionError naming `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(interval_s)
