"""Waking the tracker early: a MongoDB change stream on ``system_posts``
(:class:`shared.change_wakeup.ChangeWakeup` with :data:`WAKE_PIPELINE`), polling as fallback.

The tracker sleeps until its next due post; this wakes it when posts are created or
moved (an insert or replace, a new ``publication_date``, a status set back to
``pending_publication``). Its own claims and transitions do not wake it.

If the stream cannot be opened or breaks, the tracker is woken every
``poll_seconds`` instead, and the stream is tried again after ``retry_seconds``.
Every (re)opening wakes the tracker once, for whatever happened while it was closed.
Waking is only ever early: the tracker re-reads the database, so a missed event costs
at most the poll (or the safety-net cycle), never a post.
"""

from __future__ import annotations

from typing import Any

from shared.documents import PostStatus

WAKE_PIPELINE: tuple[dict[str, Any], ...] = ({"$match": {"$or": [
    {"operationType": {"$in": ["insert", "replace"]}},
    {"operationType": "update",
     "updateDescription.updatedFields.status": PostStatus.PENDING.value},
    {"operationType": "update",
     "updateDescription.updatedFields.publication_date": {"$exists": True}},
]}},)
