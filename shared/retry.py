"""The project's one retry policy: exponential backoff with jitter, capped.

Every place that waits before trying again uses it: the VK client (through
:func:`async_retrying`) and broker redelivery (through :func:`backoff_seconds`).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from shared.clock import Sleep

RetryPredicate = Callable[[BaseException], bool]
# Called before each pause: the failure, the attempt that failed (1-based), the pause.
RetryListener = Callable[[BaseException, int, float], None]


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    """Pause before the next attempt: ``base * multiplier ** (attempt - 1)``, capped, jittered.

    Jitter keeps a random share of each pause (``jitter`` = 0.5 → between half and
    all of it), so callers that failed together do not retry together, while the
    pause still grows with every attempt.
    """

    base_seconds: float = 0.5
    multiplier: float = 2.0
    max_seconds: float = 30.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if self.base_seconds < 0 or self.max_seconds < 0 or self.multiplier < 1:
            raise ValueError("backoff needs base, cap >= 0 and multiplier >= 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter must be within [0, 1]")

    def ceiling(self, attempt: int) -> float:
        """The un-jittered pause after failed attempt number ``attempt`` (1-based)."""
        if attempt < 1:
            raise ValueError(f"attempt is 1-based, got {attempt}")
        # min() before the power would overflow on absurd attempt numbers.
        exponent = min(attempt - 1, 64)
        return float(min(self.max_seconds, self.base_seconds * self.multiplier**exponent))

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """A jittered pause in ``[ceiling * (1 - jitter), ceiling]``."""
        ceiling = self.ceiling(attempt)
        draw = (rng or _RNG).random()
        return ceiling * (1 - self.jitter * draw)


@dataclass(slots=True)
class AttemptBudget:
    """Attempts one piece of work may make in all, shared by every layer that retries it.

    A caller that retries (the post tracker) hands its budget to the one it calls (the VK
    client), which spends from it on each of its own attempts: the total stays
    ``total``, never the product of both layers' limits.
    """

    total: int
    used: int = 0

    def __post_init__(self) -> None:
        if self.total < 1 or self.used < 0:
            raise ValueError("a budget needs total >= 1 and used >= 0")

    @property
    def remaining(self) -> int:
        return max(0, self.total - self.used)

    def spend(self) -> None:
        if self.remaining == 0:
            raise ValueError(f"the budget of {self.total} attempts is spent")
        self.used += 1


_RNG = random.Random()
DEFAULT_BACKOFF = BackoffPolicy()


def backoff_seconds(attempt: int) -> float:
    """The project's pause after failed attempt number ``attempt`` (1-based)."""
    return DEFAULT_BACKOFF.delay(attempt)


def async_retrying(
    *,
    max_attempts: int,
    retry_if: RetryPredicate,
    policy: BackoffPolicy = DEFAULT_BACKOFF,
    on_retry: RetryListener | None = None,
    sleep: Sleep = asyncio.sleep,
) -> AsyncRetrying:
    """A tenacity ``AsyncRetrying`` using ``policy``; the last failure is re-raised as is.

    Use as ``async for attempt in async_retrying(...): with attempt: ...``.
    Only failures for which ``retry_if`` is true are retried; cancellation never is.
    Pauses are taken with ``sleep``.
    """
    if max_attempts < 1:
        raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")

    def wait(state: RetryCallState) -> float:
        return policy.delay(state.attempt_number)

    def should_retry(exc: BaseException) -> bool:
        return isinstance(exc, Exception) and retry_if(exc)

    def before_sleep(state: RetryCallState) -> None:
        if on_retry is None or state.outcome is None or state.next_action is None:
            return
        failure = state.outcome.exception()
        if failure is not None:
            on_retry(failure, state.attempt_number, state.next_action.sleep)

    return AsyncRetrying(
        sleep=sleep,
        stop=stop_after_attempt(max_attempts),
        wait=wait,
        retry=retry_if_exception(should_retry),
        before_sleep=before_sleep,
        reraise=True,
    )
