"""Which cached content a VK event makes stale (a pure decision)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.mongo import ContentType

SCHEDULE_EVENTS = frozenset({
    "wall_schedule_post_new", "wall_schedule_post_delete",  # VK's official names
    "postponed_new", "postponed_delete",  # older names the product's docs use
})


def may_be_published_suggestion(post: Mapping[str, Any]) -> bool:
    """A published post someone other than the community wrote (``from_id``), or signed by
    a person (``signer_id``): what a suggestion looks like once an admin publishes it."""
    owner_id, from_id = post.get("owner_id"), post.get("from_id")
    return bool(post.get("signer_id")) or (
        isinstance(owner_id, int) and isinstance(from_id, int) and from_id != owner_id)


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
        if may_be_published_suggestion(post):
            # VK sends no event of its own when a suggestion is published: it left the
            # suggestions and joined the wall (the others are healed by reconciliation).
            return frozenset({ContentType.PUBLISHED, ContentType.SUGGESTED})
        return frozenset({ContentType.PUBLISHED})
    if event_type == "wall_repost":
        return frozenset({ContentType.PUBLISHED})
    if event_type in SCHEDULE_EVENTS:
        return frozenset({ContentType.SCHEDULED})
    return frozenset()
