"""Server-Sent Events frames of the update stream: pure formatting, no I/O.

Every frame that carries an ``id`` carries a cursor, so a reconnecting
``EventSource`` sends the last one back as ``Last-Event-ID`` and resumes there.
"""

from __future__ import annotations

import json

from services.update_notifier.cursor import format_cursor
from services.update_notifier.fanout import Frame
from services.update_notifier.update_log import Entry

KEEPALIVE = Frame(b": keepalive\n\n")
# Sent first: how long a disconnected EventSource waits before reconnecting.
RETRY_MILLISECONDS = 2000


def event_frame(event: str, event_id: str, data: dict[str, object], seq: int | None = None) -> Frame:
    payload = json.dumps(data, separators=(",", ":"), ensure_ascii=True)
    return Frame(f"id: {event_id}\nevent: {event}\ndata: {payload}\n\n".encode(), seq)


def update_frame(entry: Entry) -> Frame:
    cursor = format_cursor(entry.seq)
    return event_frame("update", cursor, {"projectId": entry.project_id,
                                          "contentTypes": list(entry.content_types),
                                          "cursor": cursor}, entry.seq)


def ready_frame(latest: int) -> Frame:
    """First event of a fresh stream: the position it starts from."""
    cursor = format_cursor(latest)
    return Frame(f"retry: {RETRY_MILLISECONDS}\n\n".encode()
                 + event_frame("ready", cursor, {"cursor": cursor}).data)


def resync_frame(latest: int) -> Frame:
    """The resumed position is gone from the log: reload everything, then follow from here."""
    cursor = format_cursor(latest)
    return event_frame("resync", cursor, {"cursor": cursor, "resync": True})
