"""``shared.retry`` — the project's backoff policy, which the VK client retries under."""

from __future__ import annotations

import random

import pytest
from tenacity import AsyncRetrying

from shared.retry import (
    DEFAULT_BACKOFF,
    AttemptBudget,
    BackoffPolicy,
    async_retrying,
    backoff_seconds,
)


class TestBackoffPolicy:
    def test_ceiling_grows_exponentially_up_to_the_cap(self) -> None:
        """0.5, 1, 2, 4 … seconds, never above the cap."""
        policy = BackoffPolicy(base_seconds=0.5, multiplier=2, max_seconds=3)
        assert [policy.ceiling(n) for n in range(1, 6)] == [0.5, 1, 2, 3, 3]
        assert policy.ceiling(10_000) == 3

    def test_jitter_stays_within_its_share(self) -> None:
        """Each delay lies in [ceiling * (1 - jitter), ceiling] and delays differ."""
        policy = BackoffPolicy(base_seconds=1, multiplier=2, max_seconds=60, jitter=0.5)
        rng = random.Random(7)
        delays = [policy.delay(3, rng) for _ in range(200)]
        assert all(2.0 <= delay <= 4.0 for delay in delays)
        assert len(set(delays)) > 100

    def test_no_jitter_gives_the_ceiling(self) -> None:
        """With jitter 0 the delay is exact, which tests use."""
        assert BackoffPolicy(base_seconds=0.01, jitter=0).delay(2) == 0.02

    @pytest.mark.parametrize("attempt", [0, -1])
    def test_attempts_are_one_based(self, attempt: int) -> None:
        """Attempt 0 is a caller bug, not a zero delay."""
        with pytest.raises(ValueError):
            DEFAULT_BACKOFF.ceiling(attempt)

    def test_backoff_seconds_uses_the_default_policy(self) -> None:
        """The broker's redelivery delay follows the same bounds as VK retries."""
        for attempt in range(1, 12):
            ceiling = DEFAULT_BACKOFF.ceiling(attempt)
            assert ceiling * (1 - DEFAULT_BACKOFF.jitter) <= backoff_seconds(attempt) <= ceiling
        assert backoff_seconds(100) <= DEFAULT_BACKOFF.max_seconds


class TestAsyncRetrying:
    async def test_retries_what_the_predicate_allows_then_reraises(self) -> None:
        """Retried up to max_attempts; the last failure itself is raised, with callbacks."""
        seen: list[tuple[str, int, float]] = []
        retrying = async_retrying(max_attempts=3, retry_if=lambda exc: isinstance(exc, KeyError),
                                  policy=BackoffPolicy(base_seconds=0.001, jitter=0),
                                  on_retry=lambda exc, n, d: seen.append((str(exc), n, d)))
        attempts = 0
        with pytest.raises(KeyError, match="again"):
            async for attempt in retrying:
                with attempt:
                    attempts += 1
                    raise KeyError("again")
        assert isinstance(retrying, AsyncRetrying)
        assert attempts == 3
        assert seen == [("'again'", 1, 0.001), ("'again'", 2, 0.002)]

    async def test_other_failures_are_raised_at_once(self) -> None:
        """A failure the predicate rejects is not retried."""
        attempts = 0
        with pytest.raises(ValueError):
            async for attempt in async_retrying(max_attempts=5,
                                                retry_if=lambda exc: False):
                with attempt:
                    attempts += 1
                    raise ValueError
        assert attempts == 1


class TestAttemptBudget:
    def test_spending_until_empty(self) -> None:
        """Each spend uses one attempt; an empty budget refuses to spend."""
        budget = AttemptBudget(total=2)
        budget.spend()
        budget.spend()
        assert (budget.used, budget.remaining) == (2, 0)
        with pytest.raises(ValueError, match="spent"):
            budget.spend()

    def test_more_used_than_total_leaves_nothing(self) -> None:
        """A post that already used more than a smaller budget allows has none left."""
        assert AttemptBudget(total=3, used=7).remaining == 0

    @pytest.mark.parametrize(("total", "used"), [(0, 0), (3, -1)])
    def test_invalid_budgets(self, total: int, used: int) -> None:
        with pytest.raises(ValueError):
            AttemptBudget(total=total, used=used)
