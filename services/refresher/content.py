"""Which cached content a VK event makes stale (a pure decision)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.mongo import ContentType

SCHEDULE_EVENTS = frozenset({
    "wall_schedule_post_new", "wall_schedule_post_delete",  # VK's official names
    "postponed_new", "postponed_delete",  # older names the product's docs use
})


def content_types_for(event_type: str, event_object: Mapping[str, Any] | None
                      ) -> frozenset[ContentType]:
    """The content types to refresh for one event; empty for events that cause no work."""
    if event_type == "wall_post_new":
        post = event_object or {}
        if post.get("post_type") == "suggest":
            return frozenset({ContentType.SUGGESTED})
        if post.get("postponed_id"):
            # A scheduled post went live: it left the schedule and joined the wall.
            return frozenset({ContentType.PUBLISHED, ContentType.SCHEDULED})
        return frozenset({ContentType.PUBLISHED})
    if event_type == "wall_repost":
        return frozenset({ContentType.PUBLISHED})
    if event_type in SCHEDULE_EVENTS:
        return frozenset({ContentType.SCHEDULED})
    return frozenset()
