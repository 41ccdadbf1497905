"""Per-token sliding-window rate limiting of VK calls.

VK rejects a token's call with error 6 once more than N calls (3 for user tokens,
20 for community tokens) arrive within one second. A leaky bucket such as
aiolimiter's only bounds the *average* rate — after an idle spell it lets a burst
through that can put N + 1 calls into one second — so this is a sliding window:
a call may start only when the N-th previous start is at least a full period
ago, which holds at most N starts in *any* window of that length.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from dataclasses import dataclass

from shared.clock import MonotonicClock, Sleep
from shared.vk.tokens import TokenKind, token_fingerprint

# Starts are timed here, but VK times arrivals; network jitter can bring two
# requests sent a full second apart closer together at VK's end. Waiting 5 % longer
# than the server's window absorbs up to 50 ms of such jitter per second. A request
# delayed longer than that before it leaves (a busy event loop, a full connection
# pool) is covered by :meth:`SlidingWindowLimiter.finished`: once its answer is in,
# the call counts from then, the latest moment VK can have received it.
SAFETY_MARGIN = 1.05


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most ``max_calls`` starts in any window of ``period_seconds``."""

    max_calls: int
    period_seconds: float

    def __post_init__(self) -> None:
        if self.max_calls < 1 or self.period_seconds <= 0:
            raise ValueError(f"invalid rate limit {self.max_calls}/{self.period_seconds}s")

    @classmethod
    def per_second(cls, calls_per_second: float, margin: float = SAFETY_MARGIN) -> RateLimit:
        """VK's "N requests per second", with ``margin`` added to the window.

        A fractional rate above 1 is rounded down (2.5/s → 2 per second) so that no
        one-second window ever exceeds it; a rate below 1 becomes one call per
        ``1 / rate`` seconds.
        """
        if calls_per_second <= 0 or margin < 1:
            raise ValueError("rate must be positive and margin >= 1")
        if calls_per_second >= 1:
            return cls(math.floor(calls_per_second), margin)
        return cls(1, margin / calls_per_second)


class SlidingWindowLimiter:
    """Admits callers one at a time, first come first served, within a :class:`RateLimit`.

    Cancelling a waiting caller neither uses a slot nor disturbs the queue. Not
    thread-safe; one instance serves every task of one event loop at a time.
    """

    def __init__(self, limit: RateLimit, *, clock: MonotonicClock = time.monotonic,
                 sleep: Sleep = asyncio.sleep) -> None:
        self.limit = limit
        self._clock = clock
        self._sleep = sleep
        self._starts: deque[float] = deque(maxlen=limit.max_calls)
        # Callers in arrival order; the first one whose future holds a result is
        # the one currently waiting for a free slot.
        self._queue: deque[asyncio.Future[None]] = deque()

    def __repr__(self) -> str:
        return (f"SlidingWindowLimiter({self.limit.max_calls}/{self.limit.period_seconds}s, "
                f"waiting={len(self._queue)})")

    @property
    def idle(self) -> bool:
        """Nobody waits and no start is recent enough to matter: safe to forget."""
        return not self._queue and (
            not self._starts or self._clock() - max(self._starts) >= self.limit.period_seconds)

    async def acquire(self) -> float:
        """Wait for this caller's turn and a free slot; return the recorded start time."""
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append(turn)
        self._pass_turn()
        try:
            await turn
            while (delay := self._delay()) > 0:
                await self._sleep(delay)
            start = self._clock()
            self._starts.append(start)
            return start
        finally:
            self._queue.remove(turn)
            self._pass_turn()

    def finished(self, start: float) -> None:
        """The call admitted at ``start`` got its answer: count it from now on."""
        for index, recorded in enumerate(self._starts):
            if recorded == start:
                self._starts[index] = max(start, self._clock())
                return

    def _delay(self) -> float:
        """Seconds until a start would keep every window within the limit."""
        if len(self._starts) < self.limit.max_calls:
            return 0.0
        return min(self._starts) + self.limit.period_seconds - self._clock()

    def _pass_turn(self) -> None:
        """Give the turn to the first caller still waiting, unless someone holds it."""
        for turn in self._queue:
            if not turn.done():
                turn.set_result(None)
                return
            if not turn.cancelled():
                return  # the turn is held; its holder passes it on when done


class RateLimiterRegistry:
    """One limiter per (token, limit), created on first use, shared by every caller.

    Keys are token fingerprints, so the registry never holds a token. Limiters
    that went idle are dropped once many exist; a fresh one behaves the same.
    """

    def __init__(self, *, clock: MonotonicClock = time.monotonic, sleep: Sleep = asyncio.sleep,
                 sweep_above: int = 1024) -> None:
        self._clock = clock
        self._sleep = sleep
        self._sweep_above = sweep_above
        self._limiters: dict[tuple[str, RateLimit], SlidingWindowLimiter] = {}

    def __len__(self) -> int:
        return len(self._limiters)

    def limiter(self, token: str, limit: RateLimit) -> SlidingWindowLimiter:
        key = (token_fingerprint(token), limit)
        found = self._limiters.get(key)
        if found is None:
            if len(self._limiters) >= self._sweep_above:
                self._sweep()
            found = SlidingWindowLimiter(limit, clock=self._clock, sleep=self._sleep)
            self._limiters[key] = found
        return found

    def _sweep(self) -> None:
        for key in [key for key, limiter in self._limiters.items() if limiter.idle]:
            del self._limiters[key]


@dataclass(frozen=True, slots=True)
class TokenRateLimits:
    """The limit for each :class:`TokenKind`."""

    user: RateLimit
    community: RateLimit

    @classmethod
    def per_second(cls, user_rps: float, community_rps: float) -> TokenRateLimits:
        return cls(RateLimit.per_second(user_rps), RateLimit.per_second(community_rps))

    def for_kind(self, kind: TokenKind) -> RateLimit:
        return self.user if kind is TokenKind.USER else self.community


# Every VkClient of the process shares these unless given its own registry, so two
# clients using one token still respect one limit.
PROCESS_RATE_LIMITERS = RateLimiterRegistry()
