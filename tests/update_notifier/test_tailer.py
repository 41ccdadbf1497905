from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from structlog.testing import capture_logs

from services.update_notifier.head import HeadWindow
from services.update_notifier.tailer import follow_log
from services.update_notifier.update_log import Entry, UpdateLog
from shared.change_stream import stop_following
from shared.mongo import Document, ensure_indexes
from tests.update_notifier.conftest import update
from tools.mongod import mongo_url, start_mongod, stop_mongod


class Follower:
    """Runs :func:`follow_log` in a task and collects what it reports."""

    def __init__(self, update_log: UpdateLog, after: int) -> None:
        self.seqs: list[int] = []
        self._arrived = asyncio.Event()
        self._task = asyncio.create_task(follow_log(update_log, self._on_entry, after=after,
                                                    head=HeadWindow()))

    def _on_entry(self, entry: Entry) -> None:
        self.seqs.append(entry.seq)
        self._arrived.set()

    async def wait_for(self, count: int, timeout: float = 10) -> list[int]:
        async with asyncio.timeout(timeout):
            while len(self.seqs) < count:
                self._arrived.clear()
                await self._arrived.wait()
        return self.seqs

    async def stop(self) -> None:
        await stop_following(self._task)


@pytest.fixture
async def follower_factory() -> AsyncIterator[list[Follower]]:
    followers: list[Follower] = []
    yield followers
    for follower in followers:
        await follower.stop()


class TestFollowLog:
    async def test_reports_backlog_after_the_position_then_live_entries_once_in_order(
        self, db: AsyncDatabase[Document], follower_factory: list[Follower]
    ) -> None:
        """Entries logged before the stream opened come from the log, later ones from the stream."""
        update_log = UpdateLog(db)
        await update_log.prepare()
        for project_id in ("p1", "p2", "p3"):
            await update_log.append(update(project_id))
        follower = Follower(update_log, after=1)
        follower_factory.append(follower)
        assert await follower.wait_for(2) == [2, 3]
        for project_id in ("p4", "p5"):
            await update_log.append(update(project_id))
        assert await follower.wait_for(4) == [2, 3, 4, 5]


class TestFollowLogAcrossMongodRestart:
    async def test_reopens_after_the_last_seen_seq_and_loses_nothing(
        self, restartable_mongod: tuple[Path, int, list[subprocess.Popen[bytes]]],
        follower_factory: list[Follower],
    ) -> None:
        """The change stream dies with mongod; the follower re-opens from the log, no gap, no repeat."""
        data_dir, port, processes = restartable_mongod
        # Fail fast while mongod is down, so the driver's own one-shot resume gives up
        # and the follower's re-open (by seq) is what recovers.
        client: AsyncMongoClient[Document] = AsyncMongoClient(
            mongo_url(port), serverSelectionTimeoutMS=300, tz_aware=True)
        try:
            db = client["tailer"]
            await ensure_indexes(db, 3600)
            update_log = UpdateLog(db)
            await update_log.prepare()
            await update_log.append(update("p1"))
            with capture_logs() as logs:
                follower = Follower(update_log, after=0)
                follower_factory.append(follower)
                assert await follower.wait_for(1) == [1]
                await update_log.append(update("p2"))
                assert await follower.wait_for(2) == [1, 2]

                await asyncio.to_thread(stop_mongod, processes[-1])
                processes.append(await asyncio.to_thread(start_mongod, data_dir, port))
                for project_id in ("p3", "p4"):
                    await update_log.append(update(project_id))
                assert await follower.wait_for(4, timeout=20) == [1, 2, 3, 4]
                await update_log.append(update("p5"))
                assert await follower.wait_for(5) == [1, 2, 3, 4, 5]
            assert "update_log_follow_failed" in [entry["event"] for entry in logs]
        finally:
            await client.close()
