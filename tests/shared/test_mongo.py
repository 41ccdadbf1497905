from __future__ import annotations

import pytest
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from shared.mongo import (
    PROCESSED_EVENTS,
    PROJECT_UPDATES,
    ContentType,
    Document,
    collection_specs,
    ensure_indexes,
)


class TestEnsureIndexes:
    async def test_creates_every_declared_index(self, db: AsyncDatabase[Document]) -> None:
        """Every index in the specs exists after start-up."""
        for spec in collection_specs(3600):
            names = {index["name"] async for index in await db[spec.name].list_indexes()}
            assert {model.document["name"] for model in spec.indexes} <= names

    async def test_is_idempotent(self, db: AsyncDatabase[Document]) -> None:
        """Running it again (every service does at start) changes nothing and does not fail."""
        await ensure_indexes(db, 24 * 3600)
        await ensure_indexes(db, 24 * 3600)

    async def test_post_caches_are_unique_per_project_and_post(
        self, db: AsyncDatabase[Document]
    ) -> None:
        """The same VK post cannot be cached twice for one project."""
        collection = db[ContentType.SCHEDULED.collection]
        await collection.insert_one({"project_id": "p", "vk_post_id": 1})
        await collection.insert_one({"project_id": "q", "vk_post_id": 1})
        with pytest.raises(DuplicateKeyError):
            await collection.insert_one({"project_id": "p", "vk_post_id": 1})

    async def test_changed_retention_updates_the_ttl_in_place(
        self, db: AsyncDatabase[Document]
    ) -> None:
        """A new UPDATES_RETENTION_SECONDS takes effect without dropping the index."""
        await ensure_indexes(db, 600)
        indexes = {i["name"]: i async for i in await db[PROJECT_UPDATES].list_indexes()}
        assert indexes["created_at_ttl"]["expireAfterSeconds"] == 600
        processed = {i["name"]: i async for i in await db[PROCESSED_EVENTS].list_indexes()}
        assert processed["seen_at_ttl"]["expireAfterSeconds"] == 3 * 3600
