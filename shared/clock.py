"""The clocks code reads time through, so tests can inject their own (one meaning per name)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

# The current time in UTC: what is stored, compared with stored dates, or logged.
WallClock = Callable[[], datetime]
# Seconds on a clock that never goes back: durations and waits within one process.
MonotonicClock = Callable[[], float]
# Waits that many seconds (``asyncio.sleep``; in tests a sleep on a manual clock).
Sleep = Callable[[float], Awaitable[None]]


def utc_now() -> datetime:
    return datetime.now(UTC)
