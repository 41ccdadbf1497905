"""What happens to a post after a failed ``wall.post``, and after a look at the wall. Pure.

A failed ``wall.post`` is one of three things (:func:`decide_failure`):

* **Unknown outcome** (timeout, connection lost after sending, HTTP 5xx, a garbled
  answer, VK error 10, or anything that is not a VK error): the post may be on the
  wall. It is never sent again; it stays ``publishing`` for verification to find (by
  content) or to time out to ``possible_error``.
* **Rejected, try later** (VK errors 6 and 9, a refused connection: proof that nothing
  was posted): back to ``pending_publication`` with ``attempts + 1`` and a back-off
  (``not_before``); once ``max_attempts`` failed, ``error``. Error 29 (the method's
  daily quota) is handled the same way with a much longer back-off.
* **Rejected for good** (every other VK error: 5, 15, 27, 100, 210, 214, 219–224, ...):
  ``error`` with the code and VK's message (never the token).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from shared.retry import BackoffPolicy
from shared.vk import VkError, VkNetworkError, outcome_unknown

# VK rejected the call before doing anything: too many requests (6), flood control (9).
RETRY_LATER_CODES = frozenset({6, 9})
# The method's daily quota is used up: worth trying again, but hours later.
QUOTA_CODE = 29


@dataclass(frozen=True, slots=True)
class RetryRules:
    """How often and how patiently rejected-but-retriable posts are tried again."""

    max_attempts: int = 5
    backoff: BackoffPolicy = field(
        default_factory=lambda: BackoffPolicy(base_seconds=10, multiplier=2, max_seconds=300))
    quota_backoff: BackoffPolicy = field(
        default_factory=lambda: BackoffPolicy(base_seconds=1800, multiplier=2,
                                              max_seconds=6 * 3600))

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")


@dataclass(frozen=True, slots=True)
class KeepPublishing:
    """Outcome unknown: leave the post ``publishing``; verification decides."""

    error: str
    code: int | None = None


@dataclass(frozen=True, slots=True)
class Retry:
    """Back to ``pending_publication`` until ``not_before``."""

    error: str
    code: int | None
    attempts: int
    not_before: datetime


@dataclass(frozen=True, slots=True)
class Fail:
    """``error``: VK refused the post for good, or retries ran out."""

    error: str
    code: int | None
    attempts: int


FailureDecision = KeepPublishing | Retry | Fail


def describe(exc: BaseException) -> str:
    """A one-line, token-free description (VkError messages are redacted when built)."""
    if isinstance(exc, VkError):
        return str(exc)
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def decide_failure(exc: BaseException, *, attempts: int, now: datetime, rules: RetryRules,
                   rng: random.Random | None = None) -> FailureDecision:
    """The post's next state after ``wall.post`` raised ``exc``.

    ``attempts`` is the number of earlier failed attempts recorded on the post; the
    decision carries the new count (this failure included), except for an unknown
    outcome, which is not known to have failed.
    """
    error = describe(exc)
    if not isinstance(exc, VkError):
        return KeepPublishing(error)
    if outcome_unknown(exc):
        return KeepPublishing(error, exc.code)
    attempt = attempts + 1
    if exc.code in RETRY_LATER_CODES or exc.code == QUOTA_CODE or (
            isinstance(exc, VkNetworkError) and exc.code is None):
        if attempt >= rules.max_attempts:
            return Fail(f"gave up after {attempt} attempts: {error}", exc.code, attempt)
        policy = rules.quota_backoff if exc.code == QUOTA_CODE else rules.backoff
        delay = timedelta(seconds=policy.delay(attempt, rng))
        return Retry(error, exc.code, attempt, now + delay)
    return Fail(error, exc.code, attempt)


class Verdict(StrEnum):
    VERIFIED = "verified"  # on the wall: delete the system post
    TIMED_OUT = "timed_out"  # not found for too long: possible_error
    WAIT = "wait"  # not found yet: look again next cycle


def verdict(*, found: bool, since: datetime, now: datetime, timeout_seconds: float) -> Verdict:
    """After one look at the wall: ``since`` is when the post was handed to VK."""
    if found:
        return Verdict.VERIFIED
    if (now - since).total_seconds() > timeout_seconds:
        return Verdict.TIMED_OUT
    return Verdict.WAIT


def wall_page_size(publishing: int, *, minimum: int = 20, maximum: int = 100) -> int:
    """How many latest wall posts to fetch to see ``publishing`` posts and some others."""
    return max(minimum, min(maximum, publishing + 5))


def lateness_seconds(publication_date: datetime, sent_at: datetime) -> float:
    """How late ``wall.post`` was called; never negative (a post is not sent early)."""
    return max(0.0, (sent_at - publication_date).total_seconds())
