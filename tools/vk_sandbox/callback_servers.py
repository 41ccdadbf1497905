"""Callback API servers a community registered, with their per-server event settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from .config import API_VERSION

# Every event flag of groups.setCallbackSettings; getCallbackSettings reports all of them
# (the schema's groups_long_poll_events requires most).
CALLBACK_EVENT_FLAGS: tuple[str, ...] = (
    "message_new", "message_reply", "message_allow", "message_edit", "message_deny",
    "message_typing_state", "message_read", "message_event", "message_reaction_event",
    "photo_new", "audio_new", "video_new",
    "wall_reply_new", "wall_reply_edit", "wall_reply_delete", "wall_reply_restore",
    "wall_post_new", "wall_repost", "wall_schedule_post_new", "wall_schedule_post_delete",
    "board_post_new", "board_post_edit", "board_post_restore", "board_post_delete",
    "photo_comment_new", "photo_comment_edit", "photo_comment_delete", "photo_comment_restore",
    "video_comment_new", "video_comment_edit", "video_comment_delete", "video_comment_restore",
    "market_comment_new", "market_comment_edit", "market_comment_delete",
    "market_comment_restore", "market_order_new", "market_order_edit",
    "poll_vote_new", "group_join", "group_leave", "group_change_settings", "group_change_photo",
    "group_officers_edit", "user_block", "user_unblock", "lead_forms_new",
    "like_add", "like_remove",
    "donut_subscription_create", "donut_subscription_prolonged", "donut_subscription_cancelled",
    "donut_subscription_price_changed", "donut_subscription_expired", "donut_money_withdraw",
    "donut_money_withdraw_error",
)  # fmt: skip


class ServerStatus(StrEnum):
    """VK's ``groups_callback_server.status``."""

    UNCONFIGURED = "unconfigured"
    FAILED = "failed"
    WAIT = "wait"  # confirmation handshake in flight
    OK = "ok"


@dataclass
class CallbackServer:
    """One receiver URL. Events reach it only while its status is ``ok``."""

    id: int
    group_id: int
    title: str
    creator_id: int
    url: str
    secret_key: str = ""
    status: ServerStatus = ServerStatus.UNCONFIGURED
    api_version: str = API_VERSION
    events: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CALLBACK_EVENT_FLAGS, 0))

    def wants(self, event_type: str) -> bool:
        return self.events.get(event_type, 0) == 1

    def to_vk(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "creator_id": self.creator_id,
            "url": self.url,
            "secret_key": self.secret_key,
            "status": str(self.status),
        }

    def settings_to_vk(self) -> dict[str, Any]:
        return {"api_version": self.api_version, "events": dict(self.events)}
