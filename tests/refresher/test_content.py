from __future__ import annotations

from typing import Any

import pytest

from services.refresher.content import content_types_for
from shared.mongo import ContentType

PUBLISHED, SCHEDULED, SUGGESTED = ContentType.PUBLISHED, ContentType.SCHEDULED, ContentType.SUGGESTED


class TestContentTypesFor:
    @pytest.mark.parametrize(("event_type", "event_object", "expected"), [
        ("wall_post_new", {"id": 1, "post_type": "post"}, {PUBLISHED}),
        ("wall_post_new", {"id": 1, "post_type": "suggest"}, {SUGGESTED}),
        ("wall_post_new", {"id": 9, "post_type": "post", "postponed_id": 4}, {PUBLISHED, SCHEDULED}),
        ("wall_post_new", None, {PUBLISHED}),
        ("wall_post_new", {"id": 5, "owner_id": -7, "from_id": -7}, {PUBLISHED}),
        ("wall_post_new", {"id": 5, "owner_id": -7, "from_id": 42}, {PUBLISHED, SUGGESTED}),
        ("wall_post_new", {"id": 5, "owner_id": -7, "from_id": -7, "signer_id": 42},
         {PUBLISHED, SUGGESTED}),
        ("wall_post_new", {"id": 5, "owner_id": -7, "from_id": "42"}, {PUBLISHED}),
        ("wall_repost", {"id": 2}, {PUBLISHED}),
        ("wall_schedule_post_new", {"id": 3}, {SCHEDULED}),
        ("wall_schedule_post_delete", {"id": 3}, {SCHEDULED}),
        ("postponed_new", {"id": 3}, {SCHEDULED}),
        ("postponed_delete", {"id": 3}, {SCHEDULED}),
    ])
    def test_content_events(self, event_type: str, event_object: dict[str, Any] | None,
                            expected: set[ContentType]) -> None:
        """Each content event maps to the content types the product's design names."""
        assert content_types_for(event_type, event_object) == expected

    @pytest.mark.parametrize("event_type", ["message_new", "group_join", "wall_reply_new", ""])
    def test_other_events_cause_no_work(self, event_type: str) -> None:
        """Events outside the content set refresh nothing."""
        assert content_types_for(event_type, {"id": 1}) == frozenset()

    def test_postponed_id_zero_is_not_a_scheduled_post(self) -> None:
        """VK omits postponed_id or sends a falsy value for ordinary posts."""
        assert content_types_for("wall_post_new", {"postponed_id": 0}) == {PUBLISHED}
