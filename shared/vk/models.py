"""Typed VK objects the planner reads: wall posts, wall pages, callback servers."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import structlog
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)


class WallFilter(StrEnum):
    """``filter`` of ``wall.get``."""

    OWNER = "owner"
    ALL = "all"
    POSTPONED = "postponed"
    SUGGESTS = "suggests"


def attachment_id(attachment: Any) -> str | None:
    """VK's id string for an attachment object, as ``wall.post`` takes it.

    ``{"type": "photo", "photo": {"owner_id": -1, "id": 2, "access_key": ...}}`` →
    ``"photo-1_2"`` (the access key is left out: it is a per-viewer secret, not part
    of the object's identity). A link becomes its URL, which is how ``wall.post``
    takes links. Anything without an owner and id gives ``None``.
    """
    if not isinstance(attachment, dict):
        return None
    kind = attachment.get("type")
    body = attachment.get(kind) if isinstance(kind, str) else None
    if not isinstance(kind, str) or not isinstance(body, dict):
        return None
    if kind == "link":
        url = body.get("url")
        return url if isinstance(url, str) and url else None
    owner_id, object_id = body.get("owner_id"), body.get("id")
    if isinstance(owner_id, int) and isinstance(object_id, int):
        return f"{kind}{owner_id}_{object_id}"
    return None


class WallPost(BaseModel):
    """One post of a wall, as ``wall.get`` / ``wall.getById`` return it."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: int
    owner_id: int
    from_id: int
    date: datetime
    text: str = ""
    post_type: str = "post"
    attachments: tuple[str, ...] = ()
    # Set on a published post that was scheduled: its id while it was postponed.
    postponed_id: int | None = None
    is_pinned: bool = False
    is_deleted: bool = False
    raw: dict[str, Any] = Field(default_factory=dict, repr=False)

    @model_validator(mode="before")
    @classmethod
    def _keep_raw_and_normalise_attachments(cls, data: Any) -> Any:
        if not isinstance(data, dict) or "raw" in data:
            return data
        attachments = data.get("attachments") or []
        ids = [found for item in attachments if (found := attachment_id(item)) is not None]
        return {**data, "attachments": ids, "raw": data}

    @field_validator("date")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        # VK sends Unix time; a naive value can only mean UTC.
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    @property
    def full_id(self) -> str:
        """``"{owner_id}_{id}"``, as ``wall.getById`` and ``wall{...}`` links use it."""
        return f"{self.owner_id}_{self.id}"


def wall_posts(items: Any) -> list[WallPost]:
    """The items that are wall posts; the others (a deleted post's stub without
    ``from_id`` or ``date``, an unknown shape) are skipped with a log line each."""
    posts: list[WallPost] = []
    for item in items if isinstance(items, list | tuple) else ():
        if isinstance(item, WallPost):
            posts.append(item)
            continue
        try:
            posts.append(WallPost.model_validate(item))
        except ValidationError as exc:
            fields = sorted({str(error["loc"][0]) for error in exc.errors() if error["loc"]})
            structlog.get_logger(__name__).warning(
                "wall_item_skipped", item_id=item.get("id") if isinstance(item, dict) else None,
                is_deleted=bool(item.get("is_deleted")) if isinstance(item, dict) else None,
                fields=fields)
    return posts


class WallPage(BaseModel):
    """One page of ``wall.get``: ``count`` is the total on the wall, not ``len(items)``.

    Items that are not valid wall posts are left out (:func:`wall_posts`), so one odd
    item never hides the rest of the page.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    count: int
    items: tuple[WallPost, ...] = ()

    @field_validator("items", mode="before")
    @classmethod
    def _skip_invalid_items(cls, value: Any) -> Any:
        return tuple(wall_posts(value))


class CallbackServer(BaseModel):
    """A Callback API server of a community (``groups.getCallbackServers``).

    ``status`` is VK's: ``unconfigured``, ``failed``, ``wait`` or ``ok``.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: int
    title: str
    url: str
    status: str
    secret_key: str | None = Field(default=None, repr=False)
