"""Typed views of the documents the tracker reads: system posts and projects.

Documents are written by other parts of the product with the fields of the data
contract (README, "MongoDB data contract"); the tracker's own bookkeeping fields
are optional and read with defaults (see :mod:`services.post_tracker`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from bson import ObjectId

from shared.mongo import Document

PostId = ObjectId | str


class Status(StrEnum):
    """``system_posts.status``."""

    PENDING = "pending_publication"
    PUBLISHING = "publishing"
    ERROR = "error"
    POSSIBLE_ERROR = "possible_error"


OTHER_STATUS = "other"


def count_by_status(groups: Iterable[tuple[Any, int]]) -> dict[str, int]:
    """Posts per status from ``(status value, count)`` groups: every known status (0 when
    there is none), and ``other`` for values written by others that are none of them."""
    known = [status.value for status in Status]
    counts = dict.fromkeys([*known, OTHER_STATUS], 0)
    for value, count in groups:
        counts[value if isinstance(value, str) and value in known else OTHER_STATUS] += count
    return counts


def _optional_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(frozen=True, slots=True)
class SystemPost:
    """One ``system_posts`` document, contract fields plus tracker bookkeeping."""

    id: PostId
    project_id: str
    text: str
    attachments: tuple[str, ...]
    publication_date: datetime
    status: str
    vk_post_id: int | None = None
    # Bookkeeping (absent on documents the tracker never touched).
    claimed_by: str | None = None
    claimed_at: datetime | None = None
    sent_text: str | None = None
    correlation_id: str | None = None
    attempts: int = 0
    # ``text`` exactly as stored (it may be missing or not a string), for the claim's check.
    stored_text: Any = field(default=None, repr=False, compare=False)

    @classmethod
    def from_document(cls, document: Document) -> SystemPost:
        attachments = document.get("attachments") or []
        return cls(
            id=document["_id"],
            project_id=str(document["project_id"]),
            text=str(document.get("text") or ""),
            attachments=tuple(str(item) for item in attachments),
            publication_date=document["publication_date"],
            status=str(document.get("status")),
            vk_post_id=_optional_int(document.get("vk_post_id")),
            claimed_by=document.get("claimed_by"),
            claimed_at=document.get("claimed_at"),
            sent_text=document.get("sent_text"),
            correlation_id=document.get("correlation_id"),
            attempts=_optional_int(document.get("attempts")) or 0,
            stored_text=document.get("text"),
        )

    @property
    def key(self) -> str:
        """The id as it appears in logs and in pure functions' results."""
        return str(self.id)

    @property
    def published_since(self) -> datetime:
        """When the tracker handed it to VK (its claim), else its planned date."""
        return self.claimed_at or self.publication_date


@dataclass(frozen=True, slots=True)
class Project:
    """What the tracker needs of a ``projects`` document."""

    id: str
    group_id: int
    token: str = field(repr=False)

    @classmethod
    def from_document(cls, document: Document) -> Project:
        group_id = _optional_int(document.get("vk_group_id")) or 0
        return cls(str(document["_id"]), group_id, str(document.get("vk_user_token") or ""))

    @property
    def problem(self) -> str | None:
        """Why nothing can be posted for this project, if it is unusable."""
        if self.group_id <= 0:
            return "project has no valid vk_group_id"
        if not self.token:
            return "project has no vk_user_token"
        return None
