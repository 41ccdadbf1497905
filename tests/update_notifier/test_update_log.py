from __future__ import annotations

import asyncio
from datetime import datetime

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure
from structlog.testing import capture_logs

from services.update_notifier.polling import poll_after
from services.update_notifier.recorder import recorder
from services.update_notifier.update_log import (
    SEQ_COUNTER_ID,
    Appended,
    UpdateLog,
    abort_orphaned_transactions,
)
from shared.mongo import COUNTERS, PROJECT_UPDATES, ContentType, Document, connect
from shared.settings import Settings
from tests.support.notifier import update


async def prepared(db: AsyncDatabase[Document]) -> UpdateLog:
    update_log = UpdateLog(db)
    await update_log.prepare()
    return update_log


async def open_transaction(client: AsyncMongoClient[Document], database: str
                           ) -> AsyncClientSession:
    """A session whose transaction has written one post and is now idle, left open."""
    session = client.start_session()
    await session.start_transaction()
    await client[database][SCHEDULED_POSTS].insert_one(
        {"project_id": "p1", "vk_post_id": 1, "text": "in a transaction"}, session=session)
    return session


SCHEDULED_POSTS = ContentType.SCHEDULED.collection


class TestOrphanedTransactions:
    """The notifier ends idle transactions of its own ``appname`` only (each service has
    its own), so another service's long transaction is never killed by it."""

    @pytest.mark.parametrize(("writer", "survives"), [
        ("refresher", True), ("update_notifier", False)], ids=["refresher", "notifier"])
    async def test_a_long_refresher_transaction_is_not_killed(
        self, db: AsyncDatabase[Document], settings: Settings, writer: str, survives: bool
    ) -> None:
        """A refresher transaction open (and idle) past the notifier's threshold survives
        the notifier's clean-up and commits; the same transaction left by (another replica
        of) the notifier is ended: its commit fails and its write is gone."""
        notifier, other = connect(settings, "update_notifier"), connect(settings, writer)
        try:
            session = await open_transaction(other, settings.mongo_db)
            ended = await abort_orphaned_transactions(notifier, open_seconds=0)
            if survives:
                await session.commit_transaction()
            else:
                assert ended >= 1
                with pytest.raises(OperationFailure):
                    await session.commit_transaction()
            await session.end_session()
            assert await db[SCHEDULED_POSTS].count_documents({"project_id": "p1"}) == survives
        finally:
            await notifier.close()
            await other.close()


class TestAppend:
    async def test_entries_get_consecutive_seqs_and_the_documented_shape(
        self, db: AsyncDatabase[Document]
    ) -> None:
        """Seqs start at 1 and follow each other; the entry keeps the message's facts."""
        update_log = await prepared(db)
        first = update("p1", ContentType.SCHEDULED, ContentType.PUBLISHED)
        assert await update_log.append(first) == Appended(1, duplicate=False)
        assert await update_log.append(update("p2")) == Appended(2, duplicate=False)
        stored = await db[PROJECT_UPDATES].find_one({"_id": 1})
        assert stored is not None
        assert stored["project_id"] == "p1"
        assert stored["content_types"] == ["scheduled", "published"]
        assert stored["reason"] == "test"
        assert stored["correlation_id"] == first.correlation_id
        assert stored["occurred_at"] == first.occurred_at.replace(
            microsecond=first.occurred_at.microsecond // 1000 * 1000)  # BSON keeps milliseconds
        assert isinstance(stored["created_at"], datetime)
        assert await update_log.latest_seq() == 2
        assert await update_log.oldest_seq() == 1

    async def test_a_redelivered_message_is_not_logged_twice(
        self, db: AsyncDatabase[Document]
    ) -> None:
        """The same message again returns its first seq and uses no new one."""
        update_log = await prepared(db)
        message = update("p1")
        assert await update_log.append(message) == Appended(1, duplicate=False)
        assert await update_log.append(message) == Appended(1, duplicate=True)
        assert await update_log.append(update("p2")) == Appended(2, duplicate=False)
        assert await db[PROJECT_UPDATES].count_documents({}) == 2

    async def test_distinct_messages_sharing_a_correlation_id_are_all_kept(
        self, db: AsyncDatabase[Document]
    ) -> None:
        """One refresh may report one project twice (per content type): both are news."""
        update_log = await prepared(db)
        scheduled = update("p1", ContentType.SCHEDULED)
        published = scheduled.model_copy(update={"content_types": (ContentType.PUBLISHED,)})
        assert published.correlation_id == scheduled.correlation_id
        await update_log.append(scheduled)
        assert (await update_log.append(published)).duplicate is False

    async def test_prepare_never_leaves_the_counter_behind_the_log(
        self, db: AsyncDatabase[Document]
    ) -> None:
        """Had ``counters`` been lost, the next seq still follows the newest entry."""
        update_log = await prepared(db)
        for project_id in ("p1", "p2", "p3"):
            await update_log.append(update(project_id))
        await db[COUNTERS].delete_one({"_id": SEQ_COUNTER_ID})
        await update_log.prepare()
        assert await update_log.append(update("p4")) == Appended(4, duplicate=False)

    async def test_concurrent_writers_never_let_a_reader_skip_an_entry(
        self, db: AsyncDatabase[Document], settings: Settings
    ) -> None:
        """200 appends racing from two writers: a cursor reader polling meanwhile sees each once.

        This is the commit-order property: if seq N+1 could be visible before N, a
        poll in between would move the cursor past N for good.
        """
        clients = [connect(settings, "update_notifier"), connect(settings, "update_notifier")]
        try:
            writers = [await prepared(client[settings.mongo_db]) for client in clients]
            reader = UpdateLog(db)
            expected = {f"p{index}" for index in range(200)}
            seen: list[str] = []
            writing = asyncio.gather(*(writers[index % 2].append(update(f"p{index}"))
                                       for index in range(200)))

            async def read_until_all_seen() -> None:
                cursor = 0
                while len(seen) < len(expected):
                    poll = await poll_after(reader, cursor)
                    assert not poll.resync
                    seen.extend(poll.project_ids)
                    cursor = poll.cursor
                    await asyncio.sleep(0)

            appended, _ = await asyncio.wait_for(asyncio.gather(writing, read_until_all_seen()), 30)
            assert sorted(result.seq for result in appended) == list(range(1, 201))
            assert len(seen) == len(expected)  # nothing twice
            assert set(seen) == expected  # nothing missed
        finally:
            for client in clients:
                await client.close()


class TestLegacyCursor:
    async def test_advancing_returns_the_previous_position_and_never_goes_back(
        self, db: AsyncDatabase[Document]
    ) -> None:
        """The shared legacy cursor is swapped atomically and only moves forward."""
        update_log = await prepared(db)
        assert await update_log.advance_legacy_cursor(5) is None
        assert await update_log.advance_legacy_cursor(8) == 5
        assert await update_log.advance_legacy_cursor(6) == 8
        assert await update_log.advance_legacy_cursor(9) == 8


class TestRecorder:
    async def test_logs_each_recorded_update_with_its_seq_and_correlation_id(
        self, db: AsyncDatabase[Document]
    ) -> None:
        """``project_update_recorded`` names the project, seq and correlation id."""
        handle = recorder(await prepared(db))
        message = update("p1")
        with capture_logs() as logs:
            await handle(message)
            await handle(message)
        assert [(entry["event"], entry["project_id"], entry["seq"], entry["correlation_id"])
                for entry in logs] == [
            ("project_update_recorded", "p1", 1, message.correlation_id),
            ("project_update_duplicate", "p1", 1, message.correlation_id),
        ]
        assert all(entry["log_level"] == "info" for entry in logs)
