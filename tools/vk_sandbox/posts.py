"""A wall post as the sandbox keeps it, and its VK ``wall_wall_item`` shape."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from .attachments import attachment_object


class PostType(StrEnum):
    """VK's ``post_type`` values the sandbox produces (``wall_post_type`` in the schema)."""

    POST = "post"
    POSTPONED = "postpone"  # VK spells it "postpone", not "postponed"
    SUGGEST = "suggest"


@dataclass
class Post:
    """One post on a wall. ``date`` is the publish time (the planned one for postponed)."""

    id: int
    owner_id: int
    from_id: int
    date: int
    text: str
    post_type: PostType
    attachments: list[str] = field(default_factory=list)
    created_by: int | None = None
    postponed_id: int | None = None
    copy_history: list[dict[str, Any]] = field(default_factory=list)
    reposts: int = 0
    # Unix time until which wall.get/getById do not show the post (a "hide_posts" fault).
    hidden_until: float = -math.inf

    def visible_at(self, now: float) -> bool:
        return now >= self.hidden_until

    def to_vk(self) -> dict[str, Any]:
        """The post as VK returns it from ``wall.get`` and sends it in callbacks."""
        item: dict[str, Any] = {
            "inner_type": "wall_wallpost",
            "id": self.id,
            "owner_id": self.owner_id,
            "from_id": self.from_id,
            "date": self.date,
            "marked_as_ads": 0,
            "post_type": str(self.post_type),
            "text": self.text,
            "attachments": [attachment_object(ref, self.date) for ref in self.attachments],
            "post_source": {"type": "api"},
            "comments": {"count": 0, "can_post": 1, "groups_can_post": True},
            "likes": {"count": 0, "user_likes": 0, "can_like": 1, "can_publish": 1},
            "reposts": {"count": self.reposts, "user_reposted": 0},
            "views": {"count": 0},
            "is_favorite": False,
        }
        if self.created_by is not None:
            item["created_by"] = self.created_by
        if self.postponed_id is not None:
            item["postponed_id"] = self.postponed_id
        if self.copy_history:
            item["copy_history"] = self.copy_history
        return item
