"""Sending a failed system post again: ``error`` / ``possible_error`` → ``pending_publication``.

The post is reset to what the tracker expects of a fresh pending post (see
:mod:`services.post_tracker`): ``error`` and ``vk_post_id`` cleared, a new retry budget
(``attempts`` 0, no ``not_before``), no claim (``claimed_by``, ``claimed_at``,
``sent_text``), no outcome of the last try (``outcome_unknown``, ``published_at``,
``error_code``, ``failed_at``). The failure is kept as ``last_error`` /
``last_error_code``, as for a post waiting for a retry; ``correlation_id`` stays.

A ``possible_error`` post may well be on the wall (VK's answer was lost, or it was
hidden or deleted before verification found it): sending it again can publish it twice,
so that needs ``--force``. (Sent again unchanged, it carries the same ``wall.post``
guid, which VK uses against duplicates; VK states no window for it, so it is no
guarantee.)

The write is one update fenced by the status it was read in, so a post changed
meanwhile (by a tracker, the product, or another operator) is left alone. The tracker's
change stream sees the status set back to pending and wakes at once.
"""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.collection import AsyncCollection

from shared.documents import PostStatus
from shared.mongo import Document

REQUEUEABLE: tuple[str, ...] = (PostStatus.ERROR.value, PostStatus.POSSIBLE_ERROR.value)
NEEDS_FORCE = PostStatus.POSSIBLE_ERROR.value

REQUEUE_PIPELINE: list[dict[str, Any]] = [
    {"$set": {"status": PostStatus.PENDING.value, "last_error": "$error",
              "last_error_code": "$error_code", "error": None, "vk_post_id": None,
              "attempts": 0}},
    {"$unset": ["not_before", "claimed_by", "claimed_at", "sent_text", "outcome_unknown",
                "published_at", "error_code", "failed_at", "guid", "resends", "wall_read_at"]},
]


def refusal(document: Document, *, force: bool) -> str | None:
    """Why this post must not be requeued, or None."""
    status, post_id = document.get("status"), document["_id"]
    if status not in REQUEUEABLE:
        return (f"post {post_id} is {status}: only {' and '.join(REQUEUEABLE)} posts can be "
                "requeued")
    if status == NEEDS_FORCE and not force:
        return (f"post {post_id} is {NEEDS_FORCE}: it may be on the wall already; check the "
                "community's wall, then requeue it with --force")
    return None


async def requeue(posts: AsyncCollection[Document], document: Document) -> bool:
    """Reset the post to pending; False if it changed since ``document`` was read."""
    result = await posts.update_one({"_id": document["_id"], "status": document["status"]},
                                    REQUEUE_PIPELINE)
    return result.modified_count == 1
