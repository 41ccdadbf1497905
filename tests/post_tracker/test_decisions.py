from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.post_tracker.decisions import (
    Fail,
    KeepPublishing,
    Retry,
    RetryRules,
    WallVerdict,
    decide_failure,
    lateness_seconds,
    publication_guid,
    should_resend,
    verdict,
    wall_page_size,
)
from shared.documents import SystemPost
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
        """6 and 9 prove nothing was posted: back to pending with a back-off growing with
        the refusals in a row; the refused calls spend nothing of the attempt budget."""
        decision = decide_failure(vk_error(code), attempts=4, attempts_before=1, refusals=1,
                                  now=NOW, rules=RULES, rng=random.Random(1))
        assert decision == Retry(f"VK error {code} in wall.post: boom", code, 1,
                                 NOW + timedelta(seconds=20), refusals=2)

    def test_refused_connection_retries(self) -> None:
        """A connection that never reached VK is retried like 6 and 9."""
        decision = decide(VkNetworkError("ClientConnectorError: refused", "wall.post"))
        assert isinstance(decision, Retry) and decision.code is None
        assert decision.refusals == 1

    def test_quota_retries_much_later(self) -> None:
        """29 (daily quota) is retried, carefully: after the long quota back-off."""
        decision = decide(vk_error(29))
        assert isinstance(decision, Retry)
        assert decision.not_before == NOW + timedelta(hours=1)

    @pytest.mark.parametrize(("refusals", "failed"), [(0, False), (3, False), (8, False),
                                                      (9, True), (12, True)])
    def test_refusals_are_bounded_on_their_own(self, refusals: int, failed: bool) -> None:
        """Refused tries do not reach the attempt budget (3) but have their own bound
        (10 in a row): the tenth turns into error, saying so."""
        decision = decide_failure(vk_error(9), attempts=5, attempts_before=0,
                                  refusals=refusals, now=NOW, rules=RULES)
        if failed:
            assert decision == Fail(f"gave up after {refusals + 1} refused tries: "
                                    "VK error 9 in wall.post: boom", 9, 0)
        else:
            assert isinstance(decision, Retry) and decision.refusals == refusals + 1

    def test_quota_retries_are_bounded_by_the_budget(self) -> None:
        """29: the attempt that reaches max_attempts turns into error, saying so."""
        decision = decide(vk_error(29), attempts=3)
        assert decision == Fail("gave up after 3 attempts: VK error 29 in wall.post: boom",
                                29, 3)

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


def post(**fields: Any) -> SystemPost:
    """A publishing post whose wall.post outcome was unknown, claimed a minute ago."""
    document = {"_id": "p1", "project_id": "a", "text": "t", "publication_date": NOW,
                "status": "publishing", "claimed_at": NOW - timedelta(minutes=1),
                "sent_text": "t", "guid": "g", "outcome_unknown": True, "attempts": 1,
                "resends": 0, **fields}
    return SystemPost.from_document(document)


class TestShouldResend:
    @pytest.mark.parametrize(("fields", "look", "resend"), [
        ({}, {}, True),
        ({}, {"found": True}, False),
        ({}, {"wall_read": False}, False),
        ({"outcome_unknown": False}, {}, False),
        ({"vk_post_id": 5}, {}, False),
        ({"guid": None}, {}, False),
        ({"resends": 2}, {}, True),
        ({"resends": 3}, {}, False),
        ({"attempts": 3}, {}, False),
        ({"claimed_at": NOW - timedelta(seconds=601)}, {}, False),
    ], ids=["unknown-not-found", "found", "wall-unreadable", "outcome-known", "has-id",
            "sent-without-guid", "resends-left", "resends-used", "budget-spent",
            "window-passed"])
    def test_only_an_unknown_outcome_not_on_a_read_wall_within_bounds(
            self, fields: dict[str, Any], look: dict[str, bool], resend: bool) -> None:
        """Re-sent only after a successful look that did not find it, within the count,
        the window and the attempt budget, and only with the guid it was sent with."""
        rules = RetryRules(max_attempts=3, max_resends=3, resend_window_seconds=600)
        arguments = {"found": False, "wall_read": True, **look}
        assert should_resend(post(**fields), now=NOW, rules=rules, **arguments) is resend


class TestPublicationGuid:
    def test_stable_for_a_publication_new_for_an_edit(self) -> None:
        """Same post and content → same guid; another text, attachments or post → another."""
        guid = publication_guid("p1", "text", ["photo-1_2"])
        assert guid == publication_guid("p1", "text", ["photo-1_2"])
        assert len({guid, publication_guid("p1", "edited", ["photo-1_2"]),
                    publication_guid("p1", "text", []), publication_guid("p2", "text",
                                                                         ["photo-1_2"]),
                    publication_guid(1, "text", ["photo-1_2"]),
                    publication_guid("1", "text", ["photo-1_2"])}) == 6


class TestVerdict:
    def test_found_is_verified(self) -> None:
        """Found on the wall → verified, however late."""
        assert verdict(found=True, since=NOW - timedelta(days=1), now=NOW,
                       timeout_seconds=300) is WallVerdict.VERIFIED

    def test_not_found_waits_until_the_timeout(self) -> None:
        """Not found within the timeout → look again; past it → possible_error."""
        assert verdict(found=False, since=NOW - timedelta(seconds=300), now=NOW,
                       timeout_seconds=300) is WallVerdict.WAIT
        assert verdict(found=False, since=NOW - timedelta(seconds=301), now=NOW,
                       timeout_seconds=300) is WallVerdict.TIMED_OUT


class TestSmallRules:
    def test_wall_page_size(self) -> None:
        """At least 20, room for every publishing post plus a few, at most VK's 100."""
        assert [wall_page_size(n) for n in (0, 15, 30, 500)] == [20, 20, 35, 100]

    def test_lateness_is_never_negative(self) -> None:
        """Seconds after the publication date; 0 if (by clock noise) before it."""
        assert lateness_seconds(NOW, NOW + timedelta(seconds=1.5)) == 1.5
        assert lateness_seconds(NOW, NOW - timedelta(seconds=1)) == 0.0
