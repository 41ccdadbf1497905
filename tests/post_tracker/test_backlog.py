"""Backlogs after downtime, and several tracker replicas at once."""

from __future__ import annotations

import random
from collections import Counter
from datetime import timedelta

import structlog
from pymongo.asynchronous.database import AsyncDatabase
from structlog.testing import capture_logs

from shared.broker import Broker
from shared.mongo import SYSTEM_POSTS, Document
from shared.settings import Settings
from tests.support.communities import new_community
from tests.support.documents import insert_post
from tests.support.sandbox import RunningSandbox
from tests.support.tracker import UpdatesInbox, fast_options, now, published, running_trackers
from tests.support.waiting import eventually


async def all_settled(db: AsyncDatabase[Document]) -> bool:
    return await db[SYSTEM_POSTS].count_documents({}) == 0


class TestBacklog:
    async def test_projects_are_served_oldest_due_post_first(
            self, db: AsyncDatabase[Document], broker: Broker, tracker_settings: Settings,
            vk_sandbox: RunningSandbox, inbox: UpdatesInbox) -> None:
        """One project at a time: the project with the oldest due post goes first, and within
        a project the posts go out oldest first."""
        communities = [await new_community(db, vk_sandbox) for _ in range(4)]
        posts = [(index, number, now() - timedelta(minutes=60 - 10 * index - number))
                 for index in range(4) for number in range(2)]
        random.Random(7).shuffle(posts)
        for index, number, due in posts:
            await insert_post(db, communities[index].project_id, f"{index}-{number}", at=due)
        async with running_trackers(db, tracker_settings, broker,
                                    fast_options(max_parallel_projects=1)):
            await eventually(lambda: all_settled(db), timeout=15, what="the backlog")
        sent = [call["params"]["message"] for call in await vk_sandbox.control.calls("wall.post")]
        assert sent == [f"{index}-{number}" for index in range(4) for number in range(2)]

    async def test_verification_keeps_pace_with_a_backlog(
            self, db: AsyncDatabase[Document], broker: Broker, tracker_settings: Settings,
            vk_sandbox: RunningSandbox, inbox: UpdatesInbox) -> None:
        """A project's backlog goes out at its token's rate, with looks at the wall in between."""
        community = await new_community(db, vk_sandbox)
        for number in range(10):
            await insert_post(db, community.project_id, f"backlog {number}",
                              at=now() - timedelta(hours=1, seconds=-number))
        async with running_trackers(db, tracker_settings, broker,
                                    fast_options(verify_every_sent=4)):
            await eventually(lambda: all_settled(db), timeout=15, what="the backlog")
        calls = await vk_sandbox.control.calls()
        methods = [call["method"] for call in calls]
        last_post = len(methods) - 1 - methods[::-1].index("wall.post")
        assert methods[:last_post].count("wall.get") >= 2  # looked twice while still sending
        assert [call for call in calls if call["error_code"] is not None] == []  # never error 6
        # The token's limit held: no 4 calls within one second.
        times = [call["at"] for call in calls]
        assert all(later - earlier >= 1.0 for earlier, later in zip(times, times[3:], strict=False))


class TestReplicas:
    async def test_three_trackers_300_posts_30_projects_each_sent_once(
            self, db: AsyncDatabase[Document], broker: Broker, vk_settings: Settings,
            vk_sandbox: RunningSandbox, inbox: UpdatesInbox) -> None:
        """Three tracker instances, 300 due posts over 30 projects: exactly 300 wall posts,
        each system post verified and deleted."""
        communities = [await new_community(db, vk_sandbox) for _ in range(30)]
        documents: list[Document] = []
        for index, community in enumerate(communities):
            for number in range(10):
                documents.append({
                    "project_id": community.project_id, "text": f"post {index}-{number}",
                    "attachments": [f"photo-{community.group_id}_{number + 1}"],
                    "publication_date": now() - timedelta(seconds=60 - number),
                    "status": "pending_publication", "vk_post_id": None, "error": None})
        with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
            async with running_trackers(db, vk_settings, broker, fast_options(), count=3):
                await db[SYSTEM_POSTS].insert_many(documents)
                await eventually(lambda: all_settled(db), timeout=40, interval=0.2,
                                 what="all 300 posts verified")
        for index, community in enumerate(communities):
            texts = sorted(post["text"] for post in await published(vk_sandbox, community.group_id))
            assert texts == sorted(f"post {index}-{number}" for number in range(10))
        succeeded = [call for call in await vk_sandbox.control.calls("wall.post")
                     if call["error_code"] is None]
        assert len(succeeded) == 300
        by_tracker = Counter(entry["tracker"] for entry in logs if entry["event"] == "post_published")
        verified = Counter(entry["way"] for entry in logs if entry["event"] == "post_verified")
        print(f"\nposts published per tracker: {dict(by_tracker)}; verified: {dict(verified)}")
        assert sum(by_tracker.values()) == 300 and len(by_tracker) >= 2
        assert verified == {"id": 300}
        await inbox.wait_for(communities[0].project_id, 20)  # published + verified, each post
