"""VK's per-token request rate limit, as a sliding window."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable


class SlidingWindowRateLimiter:
    """Admits at most ``limit`` requests per key in any window of ``window`` seconds.

    Only admitted requests are counted: a client that backs off after error 6 gets
    through once its own earlier requests leave the window.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._admitted: dict[str, deque[float]] = {}

    def admit(self, key: str, limit: int, window: float) -> bool:
        now = self._clock()
        times = self._admitted.setdefault(key, deque())
        while times and times[0] <= now - window:
            times.popleft()
        if len(times) >= limit:
            return False
        times.append(now)
        return True

    def clear(self) -> None:
        self._admitted.clear()
