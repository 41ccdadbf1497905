"""The timeline: an update log entry with the steps known for it (pure).

Steps, honestly sourced: ``callback taken`` is ``processed_events.seen_at`` (when the
refresher took the VK event; the gateway's receive time is not stored); ``refresh done``
/ ``announced`` is the message's ``occurred_at``; ``recorded`` is the log entry's
``created_at``. System-post steps come from the process's
:class:`~services.update_notifier.dashboard.journal.PostJournal`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from services.update_notifier.cursor import format_cursor
from services.update_notifier.dashboard.journal import PostJournal, TimelineStep
from services.update_notifier.dashboard.values import as_datetime, iso
from shared.messages import UpdateReason
from shared.mongo import Document

# An update log entry may be read before the journal saw the change it announces (two
# change streams); a recent entry without a known step waits a moment for it.
RECENT_ENTRY = timedelta(seconds=10)


def timeline_entry(document: Document, names: Mapping[Any, str], taken: Mapping[str, datetime],
                   journal: PostJournal) -> dict[str, Any]:
    """One update log entry with the steps known for it, oldest first, ending at ``recorded``.

    ``announced`` names what the entry reports: ``refresh done`` / ``refresh failed``
    for the refresher; for the post tracker the system-post step it announced
    (``published``, ``verified``, ``error``…), or None when this process cannot tell.
    """
    seq = int(document["_id"])
    project_id = document.get("project_id")
    reason = str(document.get("reason") or "")
    correlation_id = str(document.get("correlation_id") or "")
    occurred_at = as_datetime(document.get("occurred_at"))
    created_at = as_datetime(document.get("created_at"))
    steps: list[TimelineStep] = []
    announced: str | None
    post: dict[str, Any] | None = None
    note: str | None = None
    if reason in {UpdateReason.REFRESH, UpdateReason.REFRESH_FAILED}:
        if (seen_at := taken.get(correlation_id)) is not None:
            steps.append(TimelineStep("callback taken", seen_at,
                                      "by the refresher (processed_events.seen_at)"))
        announced = "refresh done" if reason == UpdateReason.REFRESH else "refresh failed"
        if occurred_at is not None:
            steps.append(TimelineStep(announced, occurred_at, "announced (occurred_at)"))
    elif reason == UpdateReason.SYSTEM_POST:
        trace = journal.trace_for(correlation_id)
        step = None
        if trace is None:
            note = "post not known to this notifier (changed before it started)"
        elif occurred_at is not None:
            step = trace.announced_step(occurred_at)
            steps.extend(trace.path_to(step, occurred_at))
            post = trace.to_json()
        announced = step.name if step is not None else None
        if occurred_at is not None:
            steps.append(TimelineStep("announced", occurred_at, "occurred_at"))
    else:
        announced = reason or None
        if occurred_at is not None:
            steps.append(TimelineStep(reason or "occurred", occurred_at, "occurred_at"))
    if created_at is not None:
        steps.append(TimelineStep("recorded", created_at, "in the update log (created_at)"))
    return {
        "seq": seq,
        "cursor": format_cursor(seq),
        "projectId": str(project_id),
        "projectName": names.get(project_id, str(project_id)),
        "reason": reason,
        "contentTypes": [str(kind) for kind in document.get("content_types") or ()],
        "correlationId": correlation_id,
        "occurredAt": iso(occurred_at),
        "recordedAt": iso(created_at),
        "announced": announced,
        "steps": [step.to_json() for step in steps],
        "post": post,
        "note": note,
    }


def waits_for_journal(documents: Iterable[Document], journal: PostJournal,
                      now: datetime) -> bool:
    """A recent system-post entry whose step the journal does not know (yet)."""
    recent = now - RECENT_ENTRY
    for document in documents:
        occurred_at = as_datetime(document.get("occurred_at"))
        if document.get("reason") != UpdateReason.SYSTEM_POST or occurred_at is None or occurred_at < recent:
            continue
        trace = journal.trace_for(str(document.get("correlation_id")))
        if trace is None or trace.announced_step(occurred_at) is None:
            return True
    return False
