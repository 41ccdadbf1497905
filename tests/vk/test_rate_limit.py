from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import pytest

from shared.vk.rate_limit import (
    SAFETY_MARGIN,
    RateLimit,
    RateLimiterRegistry,
    SlidingWindowLimiter,
    TokenRateLimits,
)
from shared.vk.tokens import TokenKind
from tests.support.manual_clock import ManualClock

TOKEN = "vk1.a.rate-limit-test-token-0123456789abcdef"


def most_starts_in_any_window(starts: Sequence[float], window: float) -> int:
    """The largest number of ``starts`` inside one half-open window ``[t, t + window)``."""
    ordered = sorted(starts)
    return max((sum(1 for other in ordered[i:] if other < start + window)
                for i, start in enumerate(ordered)), default=0)


class TestRateLimit:
    def test_user_rate_is_three_per_second_with_margin(self) -> None:
        """3/s becomes 3 calls per 1.05 s: the margin widens the window, not the count."""
        assert RateLimit.per_second(3) == RateLimit(3, SAFETY_MARGIN)
        assert 1 < SAFETY_MARGIN <= 1.1

    def test_fractional_rates_never_exceed_the_rate_in_one_second(self) -> None:
        """2.5/s is rounded down to 2 per second; 0.5/s is one call per two seconds."""
        assert RateLimit.per_second(2.5, margin=1) == RateLimit(2, 1)
        assert RateLimit.per_second(0.5, margin=1) == RateLimit(1, 2)

    @pytest.mark.parametrize(("calls", "period"), [(0, 1.0), (1, 0.0), (3, -1.0)])
    def test_nonsense_limits_are_rejected(self, calls: int, period: float) -> None:
        """A limit that admits nothing or has no window is a configuration error."""
        with pytest.raises(ValueError):
            RateLimit(calls, period)

    def test_limits_per_token_kind(self) -> None:
        """User and community tokens get their own configured rates."""
        limits = TokenRateLimits.per_second(3, 20)
        assert limits.for_kind(TokenKind.USER).max_calls == 3
        assert limits.for_kind(TokenKind.COMMUNITY).max_calls == 20


class TestSlidingWindowLimiter:
    async def test_fifty_concurrent_callers_never_exceed_three_in_any_second(self) -> None:
        """50 callers at once on a user limit: no 1-second window ever holds 4 starts."""
        clock = ManualClock()
        limiter = SlidingWindowLimiter(RateLimit.per_second(3), clock=clock, sleep=clock.sleep)

        starts = await self._acquire_concurrently(limiter, clock, 50)

        assert len(starts) == 50
        assert most_starts_in_any_window(starts, 1.0) == 3
        assert most_starts_in_any_window(starts, SAFETY_MARGIN) == 3
        # Not slower than needed either: 50 calls take 16 full windows after the first 3.
        assert max(starts) == pytest.approx(16 * SAFETY_MARGIN)

    async def test_a_burst_after_an_idle_spell_still_respects_every_window(self) -> None:
        """Two calls late in one window and a burst right after: the burst waits for them.

        A leaky bucket would refill during the idle spell and let 3 more through.
        """
        clock = ManualClock()
        limiter = SlidingWindowLimiter(RateLimit(3, 1.0), clock=clock, sleep=clock.sleep)
        await limiter.acquire()
        clock.now = 0.9
        await limiter.acquire()
        await limiter.acquire()
        clock.now = 1.2

        burst = await self._acquire_concurrently(limiter, clock, 3)

        assert burst == [1.2, 1.9, 1.9]
        assert most_starts_in_any_window([0.0, 0.9, 0.9, *burst], 1.0) == 3

    async def test_callers_are_admitted_in_arrival_order(self) -> None:
        """Waiting callers are served first come, first served."""
        clock = ManualClock()
        limiter = SlidingWindowLimiter(RateLimit(1, 1.0), clock=clock, sleep=clock.sleep)
        admitted: list[int] = []

        async def caller(number: int) -> None:
            await limiter.acquire()
            admitted.append(number)

        tasks = [asyncio.create_task(caller(number)) for number in range(10)]
        await clock.run_until_complete(asyncio.gather(*tasks))

        assert admitted == list(range(10))

    async def test_a_newcomer_does_not_overtake_a_waiting_caller(self) -> None:
        """A caller arriving just as the slot frees queues behind the one already waiting."""
        clock = ManualClock()
        limiter = SlidingWindowLimiter(RateLimit(1, 1.0), clock=clock, sleep=clock.sleep)
        await limiter.acquire()
        waiting = asyncio.create_task(limiter.acquire())
        await clock.wait_for_sleeper()

        clock.now = 1.0  # the slot is free, but ``waiting`` has not woken up yet
        newcomer = asyncio.create_task(limiter.acquire())
        await asyncio.sleep(0)  # one loop turn: the newcomer takes its first step
        await clock.run_until_complete(asyncio.gather(waiting, newcomer))

        assert (waiting.result(), newcomer.result()) == (1.0, 2.0)

    async def test_cancelling_the_caller_waiting_for_a_slot_frees_its_turn(self) -> None:
        """A caller cancelled while waiting for the window uses no slot; the next one goes."""
        clock = ManualClock()
        limiter = SlidingWindowLimiter(RateLimit(1, 1.0), clock=clock, sleep=clock.sleep)
        assert await limiter.acquire() == 0.0
        first = asyncio.create_task(limiter.acquire())
        second = asyncio.create_task(limiter.acquire())
        await clock.wait_for_sleeper()  # ``first`` holds the turn and waits for the window

        first.cancel()
        await asyncio.gather(first, return_exceptions=True)
        await clock.run_until_complete(second)
        third = asyncio.create_task(limiter.acquire())
        await clock.run_until_complete(third)

        assert first.cancelled()
        assert second.result() == 1.0
        assert third.result() == 2.0

    async def test_cancelling_a_caller_queued_behind_others_keeps_the_queue_moving(self) -> None:
        """A caller cancelled while queued leaves; those before and after it still run."""
        clock = ManualClock()
        limiter = SlidingWindowLimiter(RateLimit(1, 1.0), clock=clock, sleep=clock.sleep)
        await limiter.acquire()
        first = asyncio.create_task(limiter.acquire())
        queued = asyncio.create_task(limiter.acquire())
        last = asyncio.create_task(limiter.acquire())
        await clock.wait_for_sleeper()

        queued.cancel()
        await clock.run_until_complete(asyncio.gather(first, last))

        assert queued.cancelled()
        assert (first.result(), last.result()) == (1.0, 2.0)
        assert limiter.idle is False
        clock.now = 3.0
        assert limiter.idle is True

    async def test_real_time_starts_keep_to_the_window(self) -> None:
        """With the real clock, 12 concurrent callers at 3 per 0.2 s keep every window."""
        limiter = SlidingWindowLimiter(RateLimit(3, 0.2))
        starts: list[float] = []

        async def caller() -> None:
            await limiter.acquire()
            starts.append(time.monotonic())

        await asyncio.gather(*(caller() for _ in range(12)))

        assert most_starts_in_any_window(starts, 0.2) <= 3
        assert max(starts) - min(starts) >= 3 * 0.2

    @staticmethod
    async def _acquire_concurrently(limiter: SlidingWindowLimiter, clock: ManualClock,
                                    callers: int) -> list[float]:
        tasks = [asyncio.create_task(limiter.acquire()) for _ in range(callers)]
        await clock.run_until_complete(asyncio.gather(*tasks))
        return [task.result() for task in tasks]


class TestRateLimiterRegistry:
    def test_one_limiter_per_token_and_limit(self) -> None:
        """Callers with the same token share a limiter; another token gets its own."""
        registry = RateLimiterRegistry()
        limit = RateLimit.per_second(3)
        assert registry.limiter(TOKEN, limit) is registry.limiter(TOKEN, limit)
        assert registry.limiter(TOKEN, limit) is not registry.limiter(TOKEN + "x", limit)
        assert len(registry) == 2

    def test_the_token_itself_is_not_kept(self) -> None:
        """Limiters are keyed by a hash of the token, so the registry never holds it."""
        registry = RateLimiterRegistry()
        registry.limiter(TOKEN, RateLimit.per_second(3))
        assert TOKEN not in repr(registry.__dict__)

    async def test_idle_limiters_are_dropped_when_many_exist(self) -> None:
        """Past ``sweep_above`` limiters, those whose window has passed are forgotten."""
        clock = ManualClock()
        registry = RateLimiterRegistry(clock=clock, sleep=clock.sleep, sweep_above=2)
        limit = RateLimit(1, 1.0)
        await registry.limiter("token-a-0123456789", limit).acquire()
        await registry.limiter("token-b-0123456789", limit).acquire()
        clock.now = 5.0
        busy = registry.limiter("token-c-0123456789", limit)
        await busy.acquire()

        registry.limiter("token-d-0123456789", limit)

        assert len(registry) == 2
        assert registry.limiter("token-c-0123456789", limit) is busy


class TestFinishedCalls:
    async def test_a_slow_call_counts_from_its_answer(self) -> None:
        """A call whose answer came late holds its slot from then: VK may have got it late."""
        clock = ManualClock()
        limiter = SlidingWindowLimiter(RateLimit(1, 1.0), clock=clock, sleep=clock.sleep)
        start = await limiter.acquire()
        clock.now = 0.8  # the request left late, or VK answered slowly
        limiter.finished(start)
        clock.now = 1.1  # a full period after the start, but not after the answer
        second = asyncio.create_task(limiter.acquire())
        await clock.wait_for_sleeper()
        clock.advance_to_next_wakeup()
        assert await second == pytest.approx(1.8)
