from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from services.post_tracker.decisions import (
    Fail,
    KeepPublishing,
    Retry,
    RetryRules,
    Verdict,
    decide_failure,
    lateness_seconds,
    verdict,
    wall_page_size,
)
from shared.retry import BackoffPolicy
from shared.vk import (
    VkError,
    VkHttpError,
    VkMalformedResponse,
    VkNetworkError,
    VkUnknownOutcome,
    error_from_payload,
)

NOW = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
RULES = RetryRules(max_attempts=3,
                   backoff=BackoffPolicy(base_seconds=10, multiplier=2, max_seconds=100, jitter=0),
                   quota_backoff=BackoffPolicy(base_seconds=3600, multiplier=1, max_seconds=3600,
                                               jitter=0))


def vk_error(code: int, message: str = "boom") -> VkError:
    return error_from_payload({"error_code": code, "error_msg": message}, "wall.post")


def decide(exc: BaseException, attempts: int = 1) -> object:
    """``attempts``: wall.post calls made for the publication, this one included."""
    return decide_failure(exc, attempts=attempts, now=NOW, rules=RULES, rng=random.Random(1))


class TestDecideFailure:
    @pytest.mark.parametrize("exc", [
        VkUnknownOutcome("TimeoutError", "wall.post"),
        VkHttpError(502, "Bad Gateway", "wall.post"),
        VkMalformedResponse("cut short", "wall.post"),
        vk_error(10, "Internal server error"),
        RuntimeError("something unexpected"),
    ], ids=["timeout", "http-5xx", "malformed", "vk-10", "not-a-vk-error"])
    def test_unknown_outcome_keeps_publishing(self, exc: BaseException) -> None:
        """Whatever may have reached VK is never sent again: verification decides."""
        assert isinstance(decide(exc), KeepPublishing)

    @pytest.mark.parametrize("code", [6, 9])
    def test_rejected_before_acting_retries_with_backoff(self, code: int) -> None:
        """6 and 9 prove nothing was posted: back to pending with the count and a back-off."""
        assert decide(vk_error(code), attempts=2) == Retry(
            f"VK error {code} in wall.post: boom", code, 2, NOW + timedelta(seconds=20))

    def test_refused_connection_retries(self) -> None:
        """A connection that never reached VK is retried like 6 and 9."""
        decision = decide(VkNetworkError("ClientConnectorError: refused", "wall.post"))
        assert isinstance(decision, Retry) and decision.code is None and decision.attempts == 1

    def test_quota_retries_much_later(self) -> None:
        """29 (daily quota) is retried, carefully: after the long quota back-off."""
        decision = decide(vk_error(29))
        assert isinstance(decision, Retry)
        assert decision.not_before == NOW + timedelta(hours=1)

    def test_retries_are_bounded(self) -> None:
        """The attempt that reaches max_attempts turns into error, saying so."""
        decision = decide(vk_error(9), attempts=3)
        assert decision == Fail("gave up after 3 attempts: VK error 9 in wall.post: boom", 9, 3)

    @pytest.mark.parametrize("code", [5, 7, 14, 15, 27, 100, 210, 214, 219, 220, 221, 222, 223,
                                      224, 999])
    def test_permanent_errors_fail_with_code(self, code: int) -> None:
        """Every other VK code (known or not) is final: error with the code and message."""
        decision = decide(vk_error(code, "refused"))
        assert decision == Fail(f"VK error {code} in wall.post: refused", code, 1)

    def test_error_text_never_has_the_token(self) -> None:
        """VK echoing the token back does not put it in the stored error."""
        exc = error_from_payload({"error_code": 5, "error_msg": "bad access_token=SECRET"},
                                 "wall.post", token="SECRET")
        decision = decide(exc)
        assert isinstance(decision, Fail) and "SECRET" not in decision.error


class TestVerdict:
    def test_found_is_verified(self) -> None:
        """Found on the wall → verified, however late."""
        assert verdict(found=True, since=NOW - timedelta(days=1), now=NOW,
                       timeout_seconds=300) is Verdict.VERIFIED

    def test_not_found_waits_until_the_timeout(self) -> None:
        """Not found within the timeout → look again; past it → possible_error."""
        assert verdict(found=False, since=NOW - timedelta(seconds=300), now=NOW,
                       timeout_seconds=300) is Verdict.WAIT
        assert verdict(found=False, since=NOW - timedelta(seconds=301), now=NOW,
                       timeout_seconds=300) is Verdict.TIMED_OUT


class TestSmallRules:
    def test_wall_page_size(self) -> None:
        """At least 20, room for every publishing post plus a few, at most VK's 100."""
        assert [wall_page_size(n) for n in (0, 15, 30, 500)] == [20, 20, 35, 100]

    def test_lateness_is_never_negative(self) -> None:
        """Seconds after the publication date; 0 if (by clock noise) before it."""
        assert lateness_seconds(NOW, NOW + timedelta(seconds=1.5)) == 1.5
        assert lateness_seconds(NOW, NOW - timedelta(seconds=1)) == 0.0
