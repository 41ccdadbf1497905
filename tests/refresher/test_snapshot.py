from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from services.refresher.snapshot import StaleSnapshot, replace_snapshot
from shared.mongo import ContentType, Document
from shared.vk import WallPost

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def post(post_id: int, text: str = "") -> WallPost:
    return WallPost.model_validate({"id": post_id, "owner_id": -1, "from_id": -1,
                                    "date": 1795748000, "text": text})


async def cached(db: AsyncDatabase[Document]) -> dict[int, str]:
    return {d["vk_post_id"]: d["text"]
            async for d in db[ContentType.SCHEDULED.collection].find({"project_id": "p"})}


class TestReplaceSnapshot:
    async def test_makes_the_cache_equal_to_what_vk_returned(
        self, db: AsyncDatabase[Document], mongo_client: AsyncMongoClient[Document]
    ) -> None:
        """Inserts new posts, updates changed ones, deletes vanished ones."""
        async with mongo_client.start_session() as session:
            await replace_snapshot(db, session, "p", ContentType.SCHEDULED,
                                   [post(1, "a"), post(2, "b")], fence=1, fetched_at=NOW)
            await replace_snapshot(db, session, "p", ContentType.SCHEDULED,
                                   [post(2, "b2"), post(3, "c")], fence=2, fetched_at=NOW)
        assert await cached(db) == {2: "b2", 3: "c"}

    async def test_older_fence_never_overwrites_newer_data(
        self, db: AsyncDatabase[Document], mongo_client: AsyncMongoClient[Document]
    ) -> None:
        """A slow refresh from an earlier round is refused once a later one was applied."""
        async with mongo_client.start_session() as session:
            await replace_snapshot(db, session, "p", ContentType.SCHEDULED, [post(5, "new")],
                                   fence=7, fetched_at=NOW)
            with pytest.raises(StaleSnapshot):
                await replace_snapshot(db, session, "p", ContentType.SCHEDULED,
                                       [post(4, "old")], fence=6, fetched_at=NOW)
            with pytest.raises(StaleSnapshot):
                await replace_snapshot(db, session, "p", ContentType.SCHEDULED,
                                       [post(4, "same fence")], fence=7, fetched_at=NOW)
        assert await cached(db) == {5: "new"}

    async def test_other_projects_and_types_are_untouched(
        self, db: AsyncDatabase[Document], mongo_client: AsyncMongoClient[Document]
    ) -> None:
        """Replacing one (project, content type) leaves every other cache as it was."""
        await db[ContentType.SCHEDULED.collection].insert_one({"project_id": "q", "vk_post_id": 1})
        await db[ContentType.PUBLISHED.collection].insert_one({"project_id": "p", "vk_post_id": 1})
        async with mongo_client.start_session() as session:
            await replace_snapshot(db, session, "p", ContentType.SCHEDULED, [], fence=1,
                                   fetched_at=NOW)
        assert await db[ContentType.SCHEDULED.collection].count_documents({}) == 1
        assert await db[ContentType.PUBLISHED.collection].count_documents({}) == 1
