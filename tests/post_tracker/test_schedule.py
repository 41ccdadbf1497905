"""Punctuality: the tracker sleeps until the next due post and wakes on changes."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from pymongo.asynchronous.database import AsyncDatabase
from structlog.testing import capture_logs

from services.post_tracker.wakeup import WAKE_PIPELINE
from shared.broker import Broker
from shared.change_stream import stop_following
from shared.change_wakeup import ChangeWakeup
from shared.documents import PostStatus
from shared.mongo import SYSTEM_POSTS, Document
from shared.settings import Settings
from tests.support.communities import new_community
from tests.support.documents import insert_post
from tests.support.sandbox import RunningSandbox
from tests.support.tracker import UpdatesInbox, fast_options, now, running_trackers, wait_deleted
from tests.support.waiting import eventually

# Long enough that only the wake-up machinery can explain a punctual send.
SAFETY_NET_SECONDS = 30.0
LATENESS_BOUND = 1.5


def to_millis(moment: datetime) -> datetime:
    """As MongoDB stores it."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


async def first_wall_post_at(sandbox: RunningSandbox) -> float:
    calls = await eventually(lambda: sandbox.control.calls("wall.post"), timeout=10,
                             what="a wall.post call")
    assert len(calls) == 1, calls
    return float(calls[0]["at"])


class TestPunctuality:
    async def test_post_is_sent_at_its_publication_date(
            self, db: AsyncDatabase[Document], broker: Broker, tracker_settings: Settings,
            vk_sandbox: RunningSandbox, inbox: UpdatesInbox) -> None:
        """Created 3 s ahead of its date, the post reaches VK within a second of the date."""
        community = await new_community(db, vk_sandbox)
        async with running_trackers(db, tracker_settings, broker,
                                    fast_options(interval_seconds=SAFETY_NET_SECONDS)):
            due = to_millis(now() + timedelta(seconds=3))
            post_id = await insert_post(db, community.project_id, "On the dot", at=due)
            sent_at = await first_wall_post_at(vk_sandbox)
            await wait_deleted(db, post_id)
        lateness = sent_at - due.timestamp()
        print(f"\npunctual send: lateness {lateness * 1000:.1f} ms")
        assert 0 <= lateness <= LATENESS_BOUND

    async def test_moved_post_is_sent_at_its_new_date(
            self, db: AsyncDatabase[Document], broker: Broker, tracker_settings: Settings,
            vk_sandbox: RunningSandbox, inbox: UpdatesInbox) -> None:
        """A post moved from next hour to 2 s from now is sent at its new date."""
        community = await new_community(db, vk_sandbox)
        post_id = await insert_post(db, community.project_id, "Moved up",
                                    at=now() + timedelta(hours=1))
        async with running_trackers(db, tracker_settings, broker,
                                    fast_options(interval_seconds=SAFETY_NET_SECONDS)):
            due = to_millis(now() + timedelta(seconds=2))
            await db[SYSTEM_POSTS].update_one({"_id": post_id},
                                              {"$set": {"publication_date": due}})
            sent_at = await first_wall_post_at(vk_sandbox)
        lateness = sent_at - due.timestamp()
        print(f"\nmoved post: lateness {lateness * 1000:.1f} ms")
        assert 0 <= lateness <= LATENESS_BOUND


class TestChangeWakeup:
    async def test_creations_and_moves_wake_the_tracker_its_own_writes_do_not(
            self, db: AsyncDatabase[Document]) -> None:
        """Insert, new date, back to pending → a wake each; a claim (→ publishing) → none."""
        wakes: list[float] = []
        wakeup = ChangeWakeup(db[SYSTEM_POSTS], lambda: wakes.append(0), poll_seconds=60,
                              retry_seconds=60, pipeline=WAKE_PIPELINE)
        task = asyncio.create_task(wakeup.run())
        try:
            await eventually(lambda: wakeup.watching, what="the stream")
            assert len(wakes) == 1  # once on opening
            post_id = await insert_post(db, "p1", "x", at=now() + timedelta(hours=1))
            await eventually(lambda: len(wakes) == 2, what="wake on insert")
            posts = db[SYSTEM_POSTS]
            await posts.update_one({"_id": post_id}, {"$set": {"status": PostStatus.PUBLISHING.value}})
            await posts.update_one({"_id": post_id}, {"$set": {"publication_date": now()}})
            # Events arrive in order: once the move woke it, the claim would have too.
            await eventually(lambda: len(wakes) >= 3, what="wake on move")
            assert len(wakes) == 3
            await posts.update_one({"_id": post_id}, {"$set": {"status": PostStatus.PENDING.value}})
            await eventually(lambda: len(wakes) == 4, what="wake on requeue")
        finally:
            await stop_following(task)

    async def test_polls_when_the_stream_cannot_be_opened(
            self, db: AsyncDatabase[Document]) -> None:
        """A stream the server refuses → woken every poll interval instead, and logged."""
        wakes: list[float] = []
        wakeup = ChangeWakeup(db[SYSTEM_POSTS], lambda: wakes.append(0), poll_seconds=0.2,
                              retry_seconds=60, pipeline=[{"$notAStage": {}}])
        with capture_logs() as logs:
            task = asyncio.create_task(wakeup.run())
            try:
                await eventually(lambda: len(wakes) >= 4, timeout=3,
                                 what="polled wake-ups")
            finally:
                await stop_following(task)
        assert not wakeup.watching
        assert [entry["event"] for entry in logs] == ["change_stream_unavailable"]
