"""The sliding-window rate limiter, on a fake clock."""

from __future__ import annotations

from tests.support.manual_clock import ManualClock
from tools.vk_sandbox.rate_limit import SlidingWindowRateLimiter


class TestSlidingWindowRateLimiter:
    def test_limit_within_window(self) -> None:
        """At most ``limit`` requests are admitted within one window."""
        clock = ManualClock(now=1000.0)
        limiter = SlidingWindowRateLimiter(clock)
        assert [limiter.admit("t", 3, 1.0) for _ in range(4)] == [True, True, True, False]

    def test_window_slides(self) -> None:
        """A slot frees exactly when the oldest admitted request leaves the window."""
        clock = ManualClock(now=1000.0)
        limiter = SlidingWindowRateLimiter(clock)
        for offset in (0.0, 0.3, 0.6):
            clock.now = 1000.0 + offset
            assert limiter.admit("t", 3, 1.0)
        clock.now = 1000.99
        assert not limiter.admit("t", 3, 1.0)
        clock.now = 1001.0
        assert limiter.admit("t", 3, 1.0)
        assert not limiter.admit("t", 3, 1.0)

    def test_rejections_do_not_count(self) -> None:
        """Refused requests do not extend the wait; keys are independent."""
        clock = ManualClock(now=1000.0)
        limiter = SlidingWindowRateLimiter(clock)
        assert limiter.admit("t", 1, 1.0)
        clock.now += 0.5
        assert not limiter.admit("t", 1, 1.0)
        assert limiter.admit("other", 1, 1.0)
        clock.now += 0.5
        assert limiter.admit("t", 1, 1.0)
