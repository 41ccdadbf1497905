from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from services.refresher.snapshot import StaleSnapshot, replace_snapshot
from shared.mongo import REFRESH_FENCES, ContentType, Document
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


LATER = datetime(2026, 11, 27, 12, 5, tzinfo=UTC)


async def fetched(db: AsyncDatabase[Document]) -> dict[int, datetime]:
    return {d["vk_post_id"]: d["fetched_at"]
            async for d in db[ContentType.SCHEDULED.collection].find({"project_id": "p"})}


class TestOnlyChangesAreWritten:
    async def test_unchanged_posts_are_left_untouched(
        self, db: AsyncDatabase[Document], mongo_client: AsyncMongoClient[Document]
    ) -> None:
        """Changed and new posts are written (new fetched_at), equal ones keep their document."""
        async with mongo_client.start_session() as session:
            await replace_snapshot(db, session, "p", ContentType.SCHEDULED,
                                   [post(1, "same"), post(2, "old"), post(3, "gone")],
                                   fence=1, fetched_at=NOW)
            # A field nobody rewrites survives only if the document is not replaced.
            await db[ContentType.SCHEDULED.collection].update_many(
                {"project_id": "p"}, {"$set": {"marker": True}})
            await replace_snapshot(db, session, "p", ContentType.SCHEDULED,
                                   [post(1, "same"), post(2, "new"), post(4, "added")],
                                   fence=2, fetched_at=LATER)
        assert await cached(db) == {1: "same", 2: "new", 4: "added"}
        assert await fetched(db) == {1: NOW, 2: LATER, 4: LATER}
        marked = {d["vk_post_id"] async for d in db[ContentType.SCHEDULED.collection].find(
            {"project_id": "p", "marker": True})}
        assert marked == {1}

    async def test_a_round_without_changes_writes_no_post(
        self, db: AsyncDatabase[Document], mongo_client: AsyncMongoClient[Document]
    ) -> None:
        """VK returned the same set: no cached post changes; the key's fence records the time."""
        posts = [post(n, f"text {n}") for n in range(1, 51)]
        async with mongo_client.start_session() as session:
            await replace_snapshot(db, session, "p", ContentType.SCHEDULED, posts, fence=1,
                                   fetched_at=NOW)
            await replace_snapshot(db, session, "p", ContentType.SCHEDULED, posts, fence=2,
                                   fetched_at=LATER)
        assert set((await fetched(db)).values()) == {NOW}
        fence = await db[REFRESH_FENCES].find_one({"_id": "p:scheduled"})
        assert fence is not None and fence["applied"] == 2 and fence["fetched_at"] == LATER

    async def test_any_content_field_counts_as_a_change(
        self, db: AsyncDatabase[Document], mongo_client: AsyncMongoClient[Document]
    ) -> None:
        """Attachments, date or post type differing (or missing in the cache) rewrite the post."""
        base = {"owner_id": -1, "from_id": -1, "date": 1795748000, "text": "t"}
        first = [WallPost.model_validate({**base, "id": n}) for n in (1, 2, 3, 4)]
        second = [
            WallPost.model_validate({**base, "id": 1, "attachments": [
                {"type": "photo", "photo": {"owner_id": -1, "id": 2}}]}),
            WallPost.model_validate({**base, "id": 2, "date": 1795748001}),
            WallPost.model_validate({**base, "id": 3, "post_type": "suggest"}),
            WallPost.model_validate({**base, "id": 4}),
        ]
        async with mongo_client.start_session() as session:
            await replace_snapshot(db, session, "p", ContentType.SCHEDULED, first, fence=1,
                                   fetched_at=NOW)
            await db[ContentType.SCHEDULED.collection].update_one(
                {"project_id": "p", "vk_post_id": 4}, {"$unset": {"postponed_id": ""}})
            await replace_snapshot(db, session, "p", ContentType.SCHEDULED, second, fence=2,
                                   fetched_at=LATER)
        assert await fetched(db) == {1: LATER, 2: LATER, 3: LATER, 4: LATER}

    async def test_a_stale_fence_writes_nothing(
        self, db: AsyncDatabase[Document], mongo_client: AsyncMongoClient[Document]
    ) -> None:
        """A refused round changes, adds and deletes nothing, and leaves the fence as it was."""
        async with mongo_client.start_session() as session:
            await replace_snapshot(db, session, "p", ContentType.SCHEDULED,
                                   [post(1, "a"), post(2, "b")], fence=5, fetched_at=NOW)
            with pytest.raises(StaleSnapshot):
                await replace_snapshot(db, session, "p", ContentType.SCHEDULED,
                                       [post(1, "older"), post(3, "c")], fence=4,
                                       fetched_at=LATER)
        assert await cached(db) == {1: "a", 2: "b"}
        fence = await db[REFRESH_FENCES].find_one({"_id": "p:scheduled"})
        assert fence is not None and fence["applied"] == 5 and fence["fetched_at"] == NOW
