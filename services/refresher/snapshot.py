"""Making one cached collection equal to what VK returned, atomically and never backwards.

The cache for (project, content type) is replaced inside one MongoDB transaction,
so a reader sees either the old set or the new one. Each write carries the
*fence* of the lease it was fetched under; a write whose fence is not newer than
the last applied one is refused, so an overlapping older refresh (a slow replica
whose lease expired, a retry) can never put older VK data over newer.

Only what changed is written: the transaction reads the cached content of the key,
deletes the posts VK no longer returns and replaces only new or changed ones. A
round of a busy key usually finds (almost) nothing changed, and writing nothing
keeps the round short (docs/performance.md).

``fetched_at`` of a cached post is therefore when *this version* of it was fetched
(it first appeared or last changed), not when it was last seen. Refreshing it on
every post each round (even with one ``update_many``) would rewrite every document
and its oplog entry — the very write volume this avoids. When the whole cache was
last made equal to VK is kept once per key instead: ``fetched_at`` on its
``refresh_fences`` document (written anyway, in the same transaction), and
``refresh_status.<content type>.at`` on the project.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pymongo import DeleteMany, ReplaceOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from shared.mongo import REFRESH_FENCES, ContentType, Document
from shared.vk import WallPost

# The fields that make up a post's cached content: a post whose fields are all equal is
# left as it is (``project_id`` is the filter; ``fetched_at`` is not content).
CONTENT_FIELDS = ("vk_post_id", "text", "attachments", "date", "post_type", "postponed_id")


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


def content_of(document: Document) -> Document:
    # A field missing from a cached document (an older form) differs from any value.
    return {field: document[field] for field in CONTENT_FIELDS if field in document}


class StaleSnapshot(Exception):
    """A newer refresh has already been applied; this one is dropped."""


async def replace_snapshot(db: AsyncDatabase[Document], session: AsyncClientSession,
                           project_id: str, content: ContentType, posts: Sequence[WallPost],
                           fence: int, fetched_at: datetime) -> bool:
    """Make the cached set equal to ``posts`` in one transaction, guarded by ``fence``;
    whether any cached post was written or deleted."""
    key = f"{project_id}:{content.value}"
    wanted = {post.id: cache_document(project_id, post, fetched_at) for post in posts}

    async def write(session: AsyncClientSession) -> bool:
        fences = db[REFRESH_FENCES]
        try:
            guarded = await fences.update_one(
                {"_id": key, "applied": {"$lt": fence}},
                {"$set": {"applied": fence, "fetched_at": fetched_at}},
                upsert=True, session=session)
        except DuplicateKeyError:
            # The upsert tried to insert because the filter did not match an existing doc.
            raise StaleSnapshot(key) from None
        if guarded.matched_count == 0 and guarded.upserted_id is None:
            raise StaleSnapshot(key)
        cache = db[content.collection]
        cached = {document["vk_post_id"]: content_of(document) async for document in cache.find(
            {"project_id": project_id}, projection=dict.fromkeys(CONTENT_FIELDS, 1) | {"_id": 0},
            session=session)}
        writes: list[ReplaceOne[Document] | DeleteMany] = [
            ReplaceOne({"project_id": project_id, "vk_post_id": post_id}, document, upsert=True)
            for post_id, document in wanted.items() if cached.get(post_id) != content_of(document)]
        if vanished := [post_id for post_id in cached if post_id not in wanted]:
            writes.append(DeleteMany({"project_id": project_id, "vk_post_id": {"$in": vanished}}))
        if writes:
            await cache.bulk_write(writes, ordered=False, session=session)
        return bool(writes)

    return await session.with_transaction(write)
