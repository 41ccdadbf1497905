from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError
from structlog.testing import capture_logs

from shared.vk.models import CallbackServer, WallPage, WallPost, attachment_id


def raw_post(**fields: Any) -> dict[str, Any]:
    return {"id": 7, "owner_id": -1, "from_id": -1, "date": 1_700_000_000, "text": "hi",
            "post_type": "post", **fields}


class TestAttachmentId:
    @pytest.mark.parametrize(("attachment", "expected"), [
        ({"type": "photo", "photo": {"id": 2, "owner_id": -1, "access_key": "k"}}, "photo-1_2"),
        ({"type": "video", "video": {"id": 456, "owner_id": 123}}, "video123_456"),
        ({"type": "doc", "doc": {"id": 9, "owner_id": -5, "access_key": "x"}}, "doc-5_9"),
        ({"type": "link", "link": {"url": "https://example.org/a"}}, "https://example.org/a"),
    ])
    def test_attachments_become_vk_id_strings(self, attachment: dict[str, Any],
                                              expected: str) -> None:
        """``type{owner_id}_{id}`` without the access key; links as their URL."""
        assert attachment_id(attachment) == expected

    @pytest.mark.parametrize("attachment", [
        {"type": "photo"},
        {"type": "photo", "photo": {"id": 2}},
        {"type": "sticker", "sticker": {"sticker_id": 5}},
        {"type": "link", "link": {}},
        "photo-1_2",
        None,
    ])
    def test_attachments_without_an_identity_give_none(self, attachment: object) -> None:
        """Anything that cannot be named by owner and id is skipped, not guessed."""
        assert attachment_id(attachment) is None


class TestWallPost:
    def test_vk_post_is_parsed_with_utc_date_and_attachment_ids(self) -> None:
        """Unix time becomes an aware UTC datetime; attachments become id strings."""
        post = WallPost.model_validate(raw_post(attachments=[
            {"type": "photo", "photo": {"id": 2, "owner_id": -1, "access_key": "secret"}},
            {"type": "sticker", "sticker": {"sticker_id": 5}},
        ], postponed_id=3, unknown_field=True))

        assert post.date == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
        assert post.date.utcoffset() is not None
        assert post.attachments == ("photo-1_2",)
        assert post.postponed_id == 3
        assert post.full_id == "-1_7"
        assert post.raw["unknown_field"] is True
        assert "secret" not in repr(post)

    def test_optional_fields_default(self) -> None:
        """A post without text, type or attachments still parses."""
        post = WallPost.model_validate({"id": 1, "owner_id": 2, "from_id": 2, "date": 0})
        assert (post.text, post.post_type, post.attachments, post.postponed_id) == (
            "", "post", (), None)

    def test_dump_and_load_round_trip(self) -> None:
        """A dumped post (e.g. stored in Mongo) loads back equal."""
        post = WallPost.model_validate(raw_post(attachments=[
            {"type": "photo", "photo": {"id": 2, "owner_id": -1}}]))
        assert WallPost.model_validate(post.model_dump()) == post

    def test_missing_id_is_rejected(self) -> None:
        """A post VK sent without its id is malformed."""
        with pytest.raises(ValidationError):
            WallPost.model_validate({"owner_id": 1, "from_id": 1, "date": 0})


class TestWallPage:
    def test_count_is_the_wall_total(self) -> None:
        """``count`` is VK's total, independent of the items on this page."""
        page = WallPage.model_validate({"count": 250, "items": [raw_post(id=1), raw_post(id=2)]})
        assert page.count == 250
        assert [post.id for post in page.items] == [1, 2]

    def test_items_that_are_not_posts_are_skipped_with_a_log_line(self) -> None:
        """A deleted post's stub (no from_id, no date) or an odd item never hides the rest."""
        stub = {"id": 3, "owner_id": -1, "is_deleted": True, "deleted_reason": "removed"}
        with capture_logs() as logs:
            page = WallPage.model_validate({"count": 4, "items": [
                raw_post(id=1), stub, "garbage", raw_post(id=2, date="yesterday")]})
        assert [post.id for post in page.items] == [1]
        skipped = [entry for entry in logs if entry["event"] == "wall_item_skipped"]
        assert [(entry["item_id"], entry["fields"]) for entry in skipped] == [
            (3, ["date", "from_id"]), (None, []), (2, ["date"])]


class TestCallbackServer:
    def test_secret_key_is_parsed_but_not_shown(self) -> None:
        """The server's secret is kept for comparison yet absent from its repr."""
        server = CallbackServer.model_validate({"id": 3, "title": "planner",
                                                "url": "https://x/cb", "status": "ok",
                                                "creator_id": 1, "secret_key": "s3cr3t-key"})
        assert server.secret_key == "s3cr3t-key"
        assert "s3cr3t-key" not in repr(server)
        assert "s3cr3t-key" not in str(server)
