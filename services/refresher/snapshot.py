"""Making one cached collection equal to what VK returned, atomically and never backwards.

The cache for (project, content type) is replaced inside one MongoDB transaction,
so a reader sees either the old set or the new one. Each write carries the
*fence* of the lease it was fetched under; a write whose fence is not newer than
the last applied one is refused, so an overlapping older refresh (a slow replica
whose lease expired, a retry) can never put older VK data over newer.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pymongo import ReplaceOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from shared.mongo import REFRESH_FENCES, ContentType, Document
from shared.vk import WallPost


def cache_document(project_id: str, post: WallPost, fetched_at: datetime) -> Document:
    """The cached form of one VK post (see the README's data contract)."""
    return {
        "project_id": project_id,
        "vk_post_id": post.id,
        "text": post.text,
        "attachments": list(post.attachments),
        "date": post.date,
        "post_type": post.post_type,
        "postponed_id": post.postponed_id,
        "fetched_at": fetched_at,
    }


class StaleSnapshot(Exception):
    """A newer refresh has already been applied; this one is dropped."""


async def replace_snapshot(db: AsyncDatabase[Document], session: AsyncClientSession,
                           project_id: str, content: ContentType, posts: Sequence[WallPost],
                           fence: int, fetched_at: datetime) -> None:
    """Replace the cached set in one transaction, guarded by ``fence``."""
    key = f"{project_id}:{content.value}"
    documents = [cache_document(project_id, post, fetched_at) for post in posts]

    async def write(session: AsyncClientSession) -> None:
        fences = db[REFRESH_FENCES]
        try:
            guarded = await fences.update_one(
                {"_id": key, "applied": {"$lt": fence}}, {"$set": {"applied": fence}},
                upsert=True, session=session)
        except DuplicateKeyError:
            # The upsert tried to insert because the filter did not match an existing doc.
            raise StaleSnapshot(key) from None
        if guarded.matched_count == 0 and guarded.upserted_id is None:
            raise StaleSnapshot(key)
        cache = db[content.collection]
        await cache.delete_many(
            {"project_id": project_id, "vk_post_id": {"$nin": [d["vk_post_id"] for d in documents]}},
            session=session)
        if documents:
            await cache.bulk_write(
                [ReplaceOne({"project_id": project_id, "vk_post_id": d["vk_post_id"]}, d, upsert=True)
                 for d in documents], ordered=False, session=session)

    await session.with_transaction(write)
