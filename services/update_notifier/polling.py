"""Answers to ``getUpdates`` polls, read from the update log.

Cursor mode: "which projects changed after my cursor" (each entry reported once
per cursor chain, whichever replica answers); near the head of the log answered
from the process's :class:`~services.update_notifier.head.HeadWindow`, with the
same answer the log would give. Legacy mode: "which projects changed since anyone
last asked", through one shared cursor stored in MongoDB.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.update_notifier.cursor import CursorVerdict, classify, has_gap, legacy_range
from services.update_notifier.head import HeadWindow
from services.update_notifier.update_log import UpdateLog

# A cursor far behind gets the projects of this many entries per poll, and the rest
# on its next polls (its new cursor is the last entry reported).
MAX_ENTRIES_PER_POLL = 10_000


class CursorAhead(ValueError):
    """The cursor is ahead of the log: not issued by it (or the log was reset)."""


@dataclass(frozen=True, slots=True)
class Poll:
    project_ids: list[str]
    cursor: int
    resync: bool = False


async def poll_after(update_log: UpdateLog, after: int, limit: int = MAX_ENTRIES_PER_POLL,
                     head: HeadWindow | None = None) -> Poll:
    """Projects with an entry after seq ``after`` (first appearance order) and the new cursor.

    From ``head`` when it can answer (no I/O), else from the log: three reads.
    """
    if head is not None and (near := head.answer(after, limit)) is not None:
        return Poll(near.project_ids, near.cursor)
    latest = await update_log.latest_seq()
    oldest = await update_log.oldest_seq() if after < latest else None
    verdict = classify(after, oldest=oldest, latest=latest)
    if verdict is CursorVerdict.INVALID:
        raise CursorAhead("cursor is ahead of the update log")
    if verdict is CursorVerdict.RESYNC:
        return Poll([], latest, resync=True)
    if after == latest:
        return Poll([], after)
    entries = await update_log.entries_after(after, limit)
    if has_gap(after, [entry.seq for entry in entries]):
        return Poll([], max(latest, entries[-1].seq), resync=True)
    project_ids = list(dict.fromkeys(entry.project_id for entry in entries))
    return Poll(project_ids, entries[-1].seq if entries else after)


async def poll_legacy(update_log: UpdateLog) -> list[str]:
    """Projects updated since the previous legacy poll (of any client, on any replica)."""
    latest = await update_log.latest_seq()
    previous = await update_log.advance_legacy_cursor(latest)
    span = legacy_range(previous, latest)
    return [] if span is None else await update_log.project_ids_between(*span)
