"""Scenario 10: a MongoDB replica-set failover during a burst of callbacks while system
posts are due — the primary stepped down, or SIGKILLed and restarted as a secondary.

The services connect with ``MONGO_URL`` listing the three members (``replicaSet=``) and
the default leases (10 s): the test's own replica set (``tools.mongod.ReplicaSet``, three
mongods on free ports, MongoDB's default 10-s election timeout) touches nobody else.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from bson import ObjectId
from pymongo.asynchronous.database import AsyncDatabase

from shared.documents import PostStatus
from shared.mongo import Document
from shared.settings import Settings
from tests.resilience.clients import CursorChain, assert_log_has_no_hole, wait_all_logged
from tests.resilience.harness import LogBook, ServiceGroup
from tests.resilience.load import WallActivity
from tests.resilience.stack import (
    attempt_statuses,
    connect_communities,
    database,
    left_behind,
    notifier_url,
    queue_depths,
    stack_settings,
    start_all,
    wait_converged,
    wall_texts,
)
from tests.support.communities import Community
from tests.support.documents import insert_post
from tests.support.sandbox import RunningSandbox
from tests.support.scenarios import Figures, Mode
from tests.support.waiting import eventually
from tools.mongod import Member, ReplicaSet

POSTS_PER_FAILOVER = 4  # due 0.5–2 s after the fault, spread over the communities
# The refresher and the tracker use each project's one admin token, and ~5 wall changes/s
# per community keep the refresher busy with it the whole run: at 3/s each (the default,
# paced per process) they ask VK for up to 6/s and the tracker's rarer calls are refused
# (error 6) for a minute or more. Their shares add up to VK's 3/s, as operations.md says.
TOKEN_SHARES = {"refresher_user_rps": 2.0, "tracker_user_rps": 1.0}


@pytest.fixture
def replica_set(tmp_path: Path) -> Iterator[ReplicaSet]:
    members = ReplicaSet(tmp_path / "replica-set")
    members.start()
    try:
        yield members
    finally:
        members.stop()


async def new_primary(replica_set: ReplicaSet, old: Member, timeout: float = 60) -> Member:
    """Wait until a member other than ``old`` is primary."""
    async def elected() -> Member | None:
        primary = await asyncio.to_thread(replica_set.primary)
        return primary if primary is not None and primary is not old else None
    return await eventually(elected, timeout=timeout, interval=0.1, what="a new primary")


def published_at(services: ServiceGroup) -> dict[str, datetime]:
    """When each system post was sent (its tracker's ``post_published`` line)."""
    return {line["post_id"]: datetime.fromisoformat(line["timestamp"])
            for line in services.events("post_tracker", "post_published")}


async def all_sent(db: AsyncDatabase[Document], post_ids: list[ObjectId]) -> bool:
    """None of the posts is still waiting to be sent: each has its VK id, is verified
    (hence deleted) or has failed (the test's checks report that)."""
    return await db["system_posts"].count_documents(
        {"_id": {"$in": post_ids}, "vk_post_id": None,
         "status": {"$in": [PostStatus.PENDING.value, PostStatus.PUBLISHING.value]}}) == 0


@pytest.mark.timeout(420)
class TestMongoFailover:
    async def test_everything_rides_through_the_failovers(
        self, mode: Mode, vk_settings: Settings, vk_sandbox: RunningSandbox,
        replica_set: ReplicaSet, services: ServiceGroup, logbook: LogBook, figures: Figures,
    ) -> None:
        """Callbacks flow (~10/s) and 4 system posts fall due just after each fault: the
        primary steps down, then the new primary is SIGKILLed and restarted (it rejoins as
        a secondary) once another is elected (long: these two, three times).
        The same processes carry on: every callback is answered ok in the end (VK's
        retries), caches equal the walls, every system post is published once and
        verified, the update log has no hole and a cursor chain sees each entry once.
        Failover time and post lateness after the election are reported."""
        faults = ["step_down", "kill_primary"] * mode.pick(1, 3)
        stack = stack_settings(vk_settings.model_copy(update={"mongo_url": replica_set.url}),
                               refresher_lease_seconds=10.0, tracker_lease_seconds=10.0,
                               tracker_verify_timeout_seconds=60.0)
        async with database(stack) as db:
            pids = await start_all(services, stack, **TOKEN_SHARES)
            communities = await connect_communities(db, vk_sandbox, stack, logbook, 2)
            activity = WallActivity(vk_sandbox, communities, interval=0.1)
            posts: dict[ObjectId, tuple[Community, str, datetime]] = {}
            failover_seconds: dict[str, list[float]] = {"step_down": [], "kill_primary": []}
            elections: list[datetime] = []
            async with aiohttp.ClientSession() as http:
                chain = CursorChain(http, [notifier_url(stack)])
                async with chain.polling(0.2), activity.running():
                    for number, fault in enumerate(faults):
                        await activity.wait_for(activity.total + 20, timeout=60)
                        fault_at = datetime.now(UTC)
                        for index in range(POSTS_PER_FAILOVER):
                            community = communities[index % len(communities)]
                            text = f"due in failover {number}.{index} {fault}"
                            due = fault_at + timedelta(seconds=0.5 + 0.5 * index)
                            post_id = await insert_post(db, community.project_id, text,
                                                               at=due)
                            posts[post_id] = (community, text, due)
                        old = await asyncio.to_thread(replica_set.primary)
                        assert old is not None
                        started_at = time.monotonic()
                        if fault == "step_down":
                            await asyncio.to_thread(replica_set.step_down)
                        else:
                            await asyncio.to_thread(replica_set.kill, old)
                        await new_primary(replica_set, old)
                        failover_seconds[fault].append(round(time.monotonic() - started_at, 1))
                        elections.append(datetime.now(UTC))
                        if fault == "kill_primary":
                            await asyncio.to_thread(replica_set.restart, old)
                        await asyncio.to_thread(replica_set.wait_healthy)
                        # This fault's posts out before the next fault, so that each is
                        # timed against the election it waited for (a post still unsent at
                        # the next fault would wait for that one's election too).
                        await eventually(lambda: all_sent(db, list(posts)), timeout=60,
                                         interval=0.2, what="this failover's posts sent")
                    await activity.wait_for(activity.total + 20, timeout=60)
                settle = await wait_converged(db, vk_sandbox, communities, stack, timeout=120)

                async def posts_settled() -> bool:
                    return await db["system_posts"].count_documents(
                        {"_id": {"$in": list(posts)}}) == 0  # verified posts are deleted

                await eventually(posts_settled, timeout=90, interval=0.5,
                                 what="every system post published and verified")

                entries = await wait_all_logged(db, services)
                await chain.catch_up(entries[-1].seq, timeout=30)

        on_walls: Counter[str] = Counter()
        for community in communities:
            on_walls += await wall_texts(vk_sandbox, community.group_id)
        texts = [text for _, text, _ in posts.values()]
        assert {text: on_walls[text] for text in texts} == dict.fromkeys(texts, 1)
        assert_log_has_no_hole(entries)
        chain_entries = chain.check(entries)
        assert left_behind(await queue_depths(stack), "refresher", "notifier") == {}
        assert all(process.alive for process in services.processes)
        assert {process.pid for process in services.processes} == pids
        # How long after the election each post went out (0 if it was due later): its
        # fault's election, or a later one if it was still unsent then.
        sent = published_at(services)
        after_election: dict[str, list[float]] = {"step_down": [], "kill_primary": []}
        for index, (post_id, (_, _, due)) in enumerate(posts.items()):
            number = index // POSTS_PER_FAILOVER
            election = max([elections[number], *(moment for moment in elections[number + 1:]
                                                  if moment <= sent[str(post_id)])])
            moment = max(due, election)
            after_election[faults[number]].append(
                round((sent[str(post_id)] - moment).total_seconds(), 2))
        deliveries = await vk_sandbox.control.deliveries()
        figures.record(
            faults=len(faults), failover_seconds=failover_seconds,
            posts_due_in_failover=len(posts), published=sum(on_walls[text] for text in texts),
            post_sent_after_election_or_due_seconds=after_election,
            wall_changes=activity.total, callbacks=len(deliveries),
            callback_statuses=dict(attempt_statuses(deliveries)), log_entries=len(entries),
            chain_entries=chain_entries, settle_seconds=round(settle, 1),
            message_retries=sum(len(process.events("message_failed_will_retry"))
                                for process in services.processes))
