"""Stored values as the dashboard's JSON shows them: times, previews, redacted errors."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from shared.documents import DocumentError, Project
from shared.logging import redact_text
from shared.mongo import Document

TEXT_PREVIEW_CHARS = 160


def iso(moment: datetime | None) -> str | None:
    """``2024-05-01T12:00:00.123Z``, or None."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def as_datetime(value: Any) -> datetime | None:
    return value if isinstance(value, datetime) else None


def text_preview(value: Any) -> str:
    text = value if isinstance(value, str) else ""
    return text if len(text) <= TEXT_PREVIEW_CHARS else text[:TEXT_PREVIEW_CHARS - 1] + "…"


def safe_error(value: Any) -> str | None:
    return None if value is None else redact_text(str(value))


def int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def group_id(project: Document) -> int | None:
    """The project's community id as the shared reader reads it (a double 123.0 is 123)."""
    try:
        return Project.from_document(project).vk_group_id
    except DocumentError:
        return None
