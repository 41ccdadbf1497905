"""Scenario 11: one node of a 3-node RabbitMQ cluster — the leader of the refresher's
quorum queue — ``kill -9``ed during a steady 200 callbacks/s while system posts are due.

The test's own cluster (``tools.rabbit_cluster``: three nodes from Debian's
``rabbitmq-server`` with their own names, ports and directories, joined with
``rabbitmqctl join_cluster``) touches nothing of the machine's broker. The services get
``AMQP_URL`` listing the three nodes; quorum queues have a member on each.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from bson import ObjectId
from pymongo.asynchronous.database import AsyncDatabase

from shared.mongo import PROCESSED_EVENTS, SYSTEM_POSTS, Document
from shared.settings import Settings
from shared.topology import Topology
from tests.resilience.harness import LogBook, ServiceGroup
from tests.resilience.stack import (
    connect_communities,
    expected_tickets,
    gateway_url,
    left_behind,
    queue_depths,
    stack_settings,
    taken_tickets,
    wait_converged,
    wall_texts,
)
from tests.support.background import in_background
from tests.support.communities import Community
from tests.support.documents import insert_post
from tests.support.sandbox import RunningSandbox
from tests.support.scenarios import Figures, Mode
from tests.support.waiting import eventually
from tools.rabbit_cluster import RabbitCluster

RATE = 200.0  # callbacks per second
# A refused callback is sent again after the gateway's Retry-After (5 s on a first try),
# else this long: VK's first retry, not its minutes-long schedule, to keep the test short.
RETRY_SECONDS = 5.0
GIVE_UP_SECONDS = 90.0
POSTS_PER_KILL = 4  # system posts due 0.5–2 s after each kill, over the communities


@pytest.fixture
def rabbit_cluster(tmp_path: Path) -> Iterator[RabbitCluster]:
    cluster = RabbitCluster(tmp_path / "rabbit-cluster")
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@dataclass
class CallbackStream:
    """VK sending ``wall_post_new`` callbacks at a fixed rate, round-robin over the
    communities; each refused one (503, a timeout) is sent again until it is ``ok``."""

    url: str
    communities: list[Community]
    rate: float
    acked_at: dict[str, float] = field(default_factory=dict)  # event key → when ok came
    refused_at: list[float] = field(default_factory=list)  # monotonic times of non-ok answers
    statuses: Counter[str] = field(default_factory=Counter)
    sent: int = 0
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def body(self, community: Community, event_id: str) -> dict[str, Any]:
        return {"type": "wall_post_new", "group_id": community.group_id, "event_id": event_id,
                "v": "5.199", "secret": community.secret,
                "object": {"id": self.sent + 1, "owner_id": -community.group_id,
                           "from_id": -community.group_id, "date": int(time.time()),
                           "text": f"callback {self.sent}", "post_type": "post"}}

    async def _deliver(self, http: aiohttp.ClientSession, community: Community) -> None:
        event_id = uuid.uuid4().hex
        body = self.body(community, event_id)
        deadline = time.monotonic() + GIVE_UP_SECONDS
        while time.monotonic() < deadline:
            try:
                async with http.post(self.url, json=body,
                                     timeout=aiohttp.ClientTimeout(total=10)) as answer:
                    text = await answer.text()
                    status = str(answer.status)
                    retry_after = float(answer.headers.get("Retry-After", RETRY_SECONDS))
            except (aiohttp.ClientError, TimeoutError) as exc:
                status, text, retry_after = type(exc).__name__, "", RETRY_SECONDS
            self.statuses[status] += 1
            if status == "200" and text == "ok":
                # The refresher's claim key (services/refresher/dedup.py: event_key).
                key = f"{community.project_id}:{community.group_id}:{event_id}"
                self.acked_at[key] = time.monotonic()
                return
            self.refused_at.append(time.monotonic())
            await asyncio.sleep(retry_after)

    async def _run(self, http: aiohttp.ClientSession) -> None:
        next_at = time.monotonic()
        while True:
            community = self.communities[self.sent % len(self.communities)]
            task = asyncio.create_task(self._deliver(http, community))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            self.sent += 1
            next_at += 1 / self.rate
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    @contextlib.asynccontextmanager
    async def running(self, http: aiohttp.ClientSession) -> AsyncIterator[CallbackStream]:
        async with in_background(self._run(http)):
            yield self

    async def drain(self) -> None:
        """Wait for every callback sent so far to be answered ok (or given up on)."""
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def unprocessed(db: AsyncDatabase[Document], keys: list[str]) -> list[str]:
    """Acknowledged events the refresher has not taken (no claim in ``processed_events``)."""
    taken = {document["_id"] async for document in
             db[PROCESSED_EVENTS].find({"_id": {"$in": keys}}, projection={"_id": 1})}
    return [key for key in keys if key not in taken]


@pytest.mark.timeout(600)
class TestRabbitNodeKilled:
    async def test_the_queue_leaders_node_dies_under_steady_load(
        self, mode: Mode, vk_settings: Settings, vk_sandbox: RunningSandbox,
        db: AsyncDatabase[Document], rabbit_cluster: RabbitCluster, services: ServiceGroup,
        logbook: LogBook, figures: Figures,
    ) -> None:
        """200 callbacks/s for 12 s (long: 60 s, and the node restarted halfway, then the
        new leader's node killed too); the quorum queue's leader node is killed 4 s in,
        with 4 system posts due 0.5–2 s after each kill.
        The gateway answers only ok or a refusal (503/timeout, retried like VK), and ok
        again soon after the kill (a publishing channel nacked for good is replaced:
        shared/broker.py); every event answered ok is taken by the refresher (0 lost: each
        has its claim and its refresh ticket; VK's retries of an event take none; a broker
        redelivery of a message whose ack died with the node takes one more — a refresh
        more, reported), caches equal the walls, every system post is published once and
        verified, nothing is left in a queue or dead-lettered."""
        duration = mode.pick(12.0, 60.0)
        kill_after = 4.0
        stack = stack_settings(vk_settings.model_copy(update={"amqp_url": rabbit_cluster.url}),
                               tracker_verify_timeout_seconds=60.0)
        await services.start_many(("callback_gateway", stack), ("refresher", stack),
                                  ("post_tracker", stack), ("update_notifier", stack))
        queue = Topology(stack.amqp_prefix).refresher_queue.name
        _, members = rabbit_cluster.queue_members(queue)
        assert sorted(members) == sorted(node.name for node in rabbit_cluster.nodes)
        communities = await connect_communities(db, vk_sandbox, stack, logbook, 2)
        stream = CallbackStream(gateway_url(stack), communities, RATE)
        kills: list[dict[str, Any]] = []
        posts: dict[ObjectId, tuple[str, datetime]] = {}  # text, due

        async def kill_leader(leader: str) -> None:
            """SIGKILL the leader's node (by PID), with system posts due just after."""
            now = datetime.now(UTC)
            for index in range(POSTS_PER_KILL):
                community = communities[index % len(communities)]
                text = f"due at kill {len(kills)}.{index}"
                due = now + timedelta(seconds=0.5 + 0.5 * index)
                posts[await insert_post(db, community.project_id, text, at=due)] = (
                    text, due)
            rabbit_cluster.kill(rabbit_cluster.node_named(leader))
            kills.append({"node": leader, "at": time.monotonic(), "wall": datetime.now(UTC)})

        # Looked up before the load: rabbitmqctl is slow on a busy machine.
        leader, _ = rabbit_cluster.queue_members(queue)
        started = time.monotonic()
        async with aiohttp.ClientSession() as http:
            async with stream.running(http):
                await asyncio.sleep(kill_after)
                await kill_leader(leader)
                if mode.long:
                    await asyncio.sleep(duration / 2 - kill_after)
                    killed = rabbit_cluster.node_named(leader)
                    await asyncio.to_thread(rabbit_cluster.restart, killed)
                    await asyncio.to_thread(rabbit_cluster.wait_running, 3)
                    leader, _ = await asyncio.to_thread(rabbit_cluster.queue_members, queue)
                    await kill_leader(leader)
                await asyncio.sleep(max(0.0, started + duration - time.monotonic()))
            sent_for = time.monotonic() - started
            await stream.drain()

        assert len(stream.acked_at) == stream.sent  # VK's retries got every one through
        keys = list(stream.acked_at)

        async def all_taken() -> bool:
            return not await unprocessed(db, keys)

        await eventually(all_taken, timeout=90, interval=1,
                         what="every acknowledged event taken by the refresher")
        settle = await wait_converged(db, vk_sandbox, communities, stack, timeout=120)

        async def posts_settled() -> bool:
            return await db[SYSTEM_POSTS].count_documents(
                {"_id": {"$in": list(posts)}}) == 0  # verified posts are deleted

        await eventually(posts_settled, timeout=90, interval=0.5,
                         what="every system post published and verified")
        on_walls: Counter[str] = Counter()
        for community in communities:
            on_walls += await wall_texts(vk_sandbox, community.group_id)
        texts = [text for text, _ in posts.values()]
        assert {text: on_walls[text] for text in texts} == dict.fromkeys(texts, 1)
        tickets = sum((await taken_tickets(db)).values())
        expected = sum((await expected_tickets(vk_sandbox, communities)).values()) + len(keys)
        assert tickets >= expected  # one per event at least: none lost
        live = rabbit_cluster.live_node()
        depths = await queue_depths(stack.model_copy(update={"amqp_url": live.url}))
        assert left_behind(depths, "refresher", "notifier") == {}
        assert all(process.alive for process in services.processes)
        first_kill = kills[0]["at"]
        refusals_after_kill = [moment - first_kill for moment in stream.refused_at
                               if moment >= first_kill]
        # The gateway's own refusals (503: nacked, no confirm, channel closed) after each
        # kill, until the next one: how long the gateway took to recover. The client's
        # timeouts also count a machine too busy to answer in time.
        not_stored = [datetime.fromisoformat(line["timestamp"]) for line in
                      services.events("callback_gateway", "callback_not_stored")]
        ends = [kill["wall"] for kill in kills[1:]] + [datetime.max.replace(tzinfo=UTC)]
        recovered_after = [
            round(max((moment - kill["wall"]).total_seconds() for moment in
                      [kill["wall"], *not_stored] if kill["wall"] <= moment < end), 1)
            for kill, end in zip(kills, ends, strict=True)]
        sent = {line["post_id"]: datetime.fromisoformat(line["timestamp"])
                for line in services.events("post_tracker", "post_published")}
        kill_walls = [kill["wall"] for kill in kills]
        post_sent_after = [  # after its due date, or the kill before it if later
            round((sent[str(post_id)] - max(due, *(moment for moment in kill_walls
                                                    if moment <= sent[str(post_id)]))
                   ).total_seconds(), 2)
            for post_id, (_, due) in posts.items()]
        figures.record(
            rate=RATE, seconds=round(sent_for, 1), callbacks=stream.sent, acknowledged=len(keys),
            lost=0, answers=dict(stream.statuses), killed=[kill["node"] for kill in kills],
            refusing_for_seconds_after_kill=round(max(refusals_after_kill, default=0.0), 1),
            gateway_503_for_seconds_after_each_kill=recovered_after,
            publish_channels_renewed=len(services.events("callback_gateway",
                                                         "broker_publish_channel_renewed")),
            refresh_tickets=tickets, tickets_from_redeliveries=tickets - expected,
            settle_seconds=round(settle, 1), posts_due_at_kills=len(posts),
            published=sum(on_walls[text] for text in texts),
            post_sent_seconds_after_due_or_kill=post_sent_after,
            announcements_retried=len(services.events("post_tracker", "announce_retry")),
            announcements_failed=len(services.events("post_tracker", "announce_failed")),
            dead_lettered=sum(len(process.events("message_dead_lettered"))
                              for process in services.processes))
