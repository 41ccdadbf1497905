"""The timeline's pure parts: an update log entry with its steps, and the JSON values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.update_notifier.dashboard.journal import PostJournal
from services.update_notifier.dashboard.timeline import timeline_entry, waits_for_journal
from services.update_notifier.dashboard.values import iso, text_preview

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
MS = timedelta(milliseconds=1)
NAMES = {"a": "Project A"}


def entry(reason: str, correlation_id: str = "c1", **rest: Any) -> dict[str, Any]:
    return {"_id": 7, "project_id": "a", "reason": reason, "correlation_id": correlation_id,
            "content_types": ["scheduled"], "occurred_at": T0 + 20 * MS,
            "created_at": T0 + 30 * MS, **rest}


def published_post() -> PostJournal:
    """A system post created, due, claimed and published (correlation id c1)."""
    journal = PostJournal()
    journal.apply_document({"_id": "p1", "project_id": "a", "text": "hi",
                            "status": "pending_publication", "publication_date": T0 - 50 * MS},
                           created_at=T0 - 100 * MS)
    journal.apply_update("p1", {"status": "publishing", "claimed_at": T0 - 40 * MS,
                                "correlation_id": "c1"}, T0 - 40 * MS)
    journal.apply_update("p1", {"published_at": T0 + 10 * MS, "vk_post_id": 5}, T0 + 10 * MS)
    return journal


def steps(result: dict[str, Any]) -> list[str]:
    return [step["step"] for step in result["steps"]]


class TestTimelineEntry:
    @pytest.mark.parametrize(("document", "taken", "announced", "expected_steps"), [
        (entry("refresh"), {"c1": T0}, "refresh done",
         ["callback taken", "refresh done", "recorded"]),
        (entry("refresh"), {}, "refresh done", ["refresh done", "recorded"]),
        (entry("refresh_failed"), {"c1": T0}, "refresh failed",
         ["callback taken", "refresh failed", "recorded"]),
        (entry("other"), {}, "other", ["other", "recorded"]),
        (entry("", occurred_at=None), {}, None, ["recorded"]),
    ])
    def test_refresher_entries(self, document: dict[str, Any], taken: dict[str, datetime],
                               announced: str | None, expected_steps: list[str]) -> None:
        result = timeline_entry(document, NAMES, taken, PostJournal())
        assert (result["announced"], steps(result)) == (announced, expected_steps)
        assert (result["seq"], result["cursor"], result["projectName"]) == (7, "v1.7", "Project A")
        assert (result["post"], result["note"]) == (None, None)

    def test_a_system_post_the_journal_knows(self) -> None:
        result = timeline_entry(entry("system_post"), NAMES, {}, published_post())
        assert result["announced"] == "published"
        assert steps(result) == ["created", "due", "claimed", "published", "announced", "recorded"]
        assert result["post"] == {"id": "p1", "text": "hi", "status": "publishing",
                                  "publicationDate": "2024-05-01T11:59:59.950Z"}

    @pytest.mark.parametrize(("occurred_ms", "announced"), [
        (22, "published"),  # between published (10) and verified (30), nearer verified
        (35, "verified"),
        (5, "published"),  # announced 5 ms "before" its write: another clock, within slack
        (-2000, None),  # nothing near: this process cannot tell
    ])
    def test_an_announcement_reports_the_latest_step_before_it(
            self, occurred_ms: int, announced: str | None) -> None:
        """A post verified 20 ms after it was published: the "published" announcement,
        made between the two writes, still reports "published" (not the nearer "verified")."""
        journal = published_post()
        journal.apply_delete("p1", T0 + 30 * MS)
        result = timeline_entry(entry("system_post", occurred_at=T0 + occurred_ms * MS), NAMES,
                                {}, journal)
        assert result["announced"] == announced

    def test_a_system_post_the_journal_does_not_know(self) -> None:
        result = timeline_entry(entry("system_post", "c9"), {}, {}, published_post())
        assert (result["announced"], steps(result)) == (None, ["announced", "recorded"])
        assert result["projectName"] == "a" and result["post"] is None
        assert result["note"] == "post not known to this notifier (changed before it started)"


class TestWaitsForJournal:
    @pytest.mark.parametrize(("documents", "now", "waits"), [
        ([entry("system_post")], T0, False),  # its step is known
        ([entry("system_post", "c9")], T0, True),  # recent, unknown: the journal may lag
        ([entry("system_post", "c9")], T0 + timedelta(minutes=1), False),  # too old to wait
        ([entry("refresh", "c9")], T0, False),  # not the journal's
        ([], T0, False),
    ])
    def test_only_recent_unknown_system_posts_wait(self, documents: list[dict[str, Any]],
                                                   now: datetime, waits: bool) -> None:
        assert waits_for_journal(documents, published_post(), now) is waits


class TestValues:
    @pytest.mark.parametrize(("moment", "text"), [
        (None, None),
        (T0 + 123 * MS, "2024-05-01T12:00:00.123Z"),
        (datetime(2024, 5, 1, 12, 0), "2024-05-01T12:00:00.000Z"),  # naive: UTC
        (datetime(2024, 5, 1, 15, 0, tzinfo=UTC).astimezone(), "2024-05-01T15:00:00.000Z"),
    ])
    def test_iso(self, moment: datetime | None, text: str | None) -> None:
        assert iso(moment) == text

    @pytest.mark.parametrize(("value", "preview"), [
        ("short", "short"), (None, ""), (5, ""), ("x" * 160, "x" * 160),
        ("x" * 161, "x" * 159 + "…"),
    ])
    def test_text_preview(self, value: object, preview: str) -> None:
        assert text_preview(value) == preview
