"""Communities wired to the gateway, and the checks every scenario ends with.

"Converged" always means the same thing: every callback VK sent was answered ``ok``
(``deliveries``), every refresh ticket is done (``refresh_state``: ``completed >=
requested``, lease free), every cache equals the sandbox's wall, and no message is
parked in a dead-letter queue or left in a queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

import aio_pika
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from services.refresher.content import content_types_for
from shared.mongo import (
    PROJECTS,
    REFRESH_STATE,
    ContentType,
    Document,
    connect,
    ensure_indexes,
)
from shared.settings import Settings
from shared.topology import Topology
from shared.vk import VkClient
from tests.resilience.harness import LogBook, ServiceGroup
from tests.support.communities import Community
from tests.support.documents import insert_project
from tests.support.sandbox import RunningSandbox
from tools.callback_setup import setup_callback, wait_until_confirmed
from tools.mongod import free_port


@contextlib.asynccontextmanager
async def database(settings: Settings) -> AsyncIterator[AsyncDatabase[Document]]:
    """The stack's database (its own client, indexes created), for the test's checks."""
    client: AsyncMongoClient[Document] = connect(settings, "tests")
    try:
        db = client[settings.mongo_db]
        await ensure_indexes(db, settings.updates_retention_seconds)
        yield db
    finally:
        await client.close()


def stack_settings(settings: Settings, **changes: Any) -> Settings:
    """The test's settings with local ports for the HTTP services and test-sized timings."""
    return settings.model_copy(update={
        "gateway_host": "127.0.0.1", "gateway_port": free_port(),
        "notifier_host": "127.0.0.1", "notifier_port": free_port(),
        "refresher_lease_seconds": 3.0, "tracker_interval_seconds": 2.0,
        "tracker_verify_timeout_seconds": 30.0, "vk_timeout_seconds": 5.0,
        **changes,
    })


async def start_all(services: ServiceGroup, settings: Settings, *,
                    refresher_user_rps: float | None = None,
                    tracker_user_rps: float | None = None) -> set[int]:
    """One process of each of the four services, ready; their PIDs. The refresher and the
    tracker may be given their own share of a user token's rate (``VK_USER_RPS``)."""
    def paced(user_rps: float | None) -> Settings:
        return settings if user_rps is None else settings.model_copy(
            update={"vk_user_rps": user_rps})

    started = await services.start_many(
        ("callback_gateway", settings), ("refresher", paced(refresher_user_rps)),
        ("post_tracker", paced(tracker_user_rps)), ("update_notifier", settings))
    return {process.pid for process in started}


def gateway_url(settings: Settings) -> str:
    return f"http://127.0.0.1:{settings.gateway_port}/api/callback"


def notifier_url(settings: Settings) -> str:
    return f"http://127.0.0.1:{settings.notifier_port}"


async def connect_community(db: AsyncDatabase[Document], sandbox: RunningSandbox,
                            settings: Settings, logbook: LogBook) -> Community:
    """A sandbox community with its own admin, its project, and the gateway confirmed as
    its callback server (so every event from now on is sent to the gateway)."""
    created = await sandbox.control.create_community()
    admin = await sandbox.control.create_user(admin_of=[created.group_id])
    logbook.register(created.community_token, admin.token)
    project_id = await insert_project(db, group_id=created.group_id, token=admin.token,
                                      confirmation_code="")
    async with VkClient.from_settings(settings) as vk:
        server = await setup_callback(db, vk, project_id, gateway_url(settings),
                                      settings.vk_api_version)
        server = await wait_until_confirmed(vk, admin.token, created.group_id, server)
    assert server.status == "ok", server
    project = await db[PROJECTS].find_one({"_id": project_id})
    assert project is not None
    logbook.register(project["vk_callback_secret"])
    return Community(created.group_id, admin.token, community_token=created.community_token,
                     confirmation_code=created.confirmation_code, project_id=project_id,
                     secret=project["vk_callback_secret"])


async def connect_communities(db: AsyncDatabase[Document], sandbox: RunningSandbox,
                              settings: Settings, logbook: LogBook, count: int) -> list[Community]:
    # Each has its own admin token, so set-ups run in parallel at each token's own rate.
    return list(await asyncio.gather(*(connect_community(db, sandbox, settings, logbook)
                                       for _ in range(count))))


# --- convergence -------------------------------------------------------------------------


async def cached_ids(db: AsyncDatabase[Document], project_id: str, content: ContentType) -> set[int]:
    return {doc["vk_post_id"] async for doc in db[content.collection].find({"project_id": project_id})}


async def wall_ids(sandbox: RunningSandbox, group_id: int, published_limit: int
                   ) -> dict[ContentType, set[int]]:
    """What each cache must hold: the newest published posts (up to the limit), the
    schedule and the suggestions, as the sandbox has them."""
    wall = await sandbox.control.wall(group_id)
    newest = sorted((post["id"] for post in wall["published"]), reverse=True)[:published_limit]
    return {ContentType.PUBLISHED: set(newest),
            ContentType.SCHEDULED: {post["id"] for post in wall["postponed"]},
            ContentType.SUGGESTED: {post["id"] for post in wall["suggests"]}}


async def cache_mismatches(db: AsyncDatabase[Document], sandbox: RunningSandbox,
                           communities: Iterable[Community], settings: Settings,
                           contents: Sequence[ContentType] = (ContentType.PUBLISHED,
                                                              ContentType.SCHEDULED),
                           ) -> list[str]:
    """Caches that differ from the sandbox's walls (empty when all are equal)."""
    problems: list[str] = []
    for community in communities:
        expected = await wall_ids(sandbox, community.group_id, settings.refresher_published_limit)
        for content in contents:
            cached = await cached_ids(db, community.project_id, content)
            if cached != expected[content]:
                problems.append(f"{community.project_id} {content.value}: cached {sorted(cached)} "
                                f"!= wall {sorted(expected[content])}")
    return problems


async def pending_refreshes(db: AsyncDatabase[Document]) -> list[Document]:
    """``refresh_state`` documents with work left or a lease still held (and not expired:
    a holder killed after its last round leaves a lease that simply runs out)."""
    return [state async for state in db[REFRESH_STATE].find({"$or": [
        {"$expr": {"$lt": ["$completed", "$requested"]}},
        {"lease_owner": {"$ne": None}, "$expr": {"$gt": ["$lease_until", "$$NOW"]}}]})]


async def undelivered(sandbox: RunningSandbox, group_ids: Iterable[int]) -> list[dict[str, Any]]:
    wanted = set(group_ids)
    return [d for d in await sandbox.control.deliveries()
            if d["group_id"] in wanted and not d["delivered"]]


async def queue_depths(settings: Settings) -> dict[str, int]:
    """Messages ready in each queue of the test's topology (consuming queues and DLQs)."""
    topology = Topology(settings.amqp_prefix)
    depths: dict[str, int] = {}
    connection = await aio_pika.connect(str(settings.amqp_url))
    async with connection:
        channel = await connection.channel()
        for queue in topology.consuming_queues:
            for name in (queue.name, queue.dead_letter_queue):
                declared = await channel.declare_queue(name, passive=True)
                depths[name] = int(declared.declaration_result.message_count or 0)
    return depths


def left_behind(depths: dict[str, int], *consumed: str) -> dict[str, int]:
    """Messages still in the named consumed queues (``refresher``, ``notifier``) or parked
    in any dead-letter queue; a queue nobody in the test consumes is not counted."""
    wanted = tuple(f".{name}." for name in consumed)
    return {name: count for name, count in depths.items()
            if count and (name.endswith(".dlq") or any(part in f"{name}." for part in wanted))}


async def converged(db: AsyncDatabase[Document], sandbox: RunningSandbox,
                    communities: Sequence[Community], settings: Settings) -> list[str]:
    """Everything that is not settled yet (empty list: converged)."""
    problems = [f"undelivered: {d['type']} {d['event_id']} attempts {d['attempts'][-1:]}"
                for d in await undelivered(sandbox, (c.group_id for c in communities))]
    if problems:
        return problems[:5]
    problems += [f"refresh pending: {state}" for state in await pending_refreshes(db)]
    if problems:
        return problems[:5]
    return await cache_mismatches(db, sandbox, communities, settings)


async def wait_converged(db: AsyncDatabase[Document], sandbox: RunningSandbox,
                         communities: Sequence[Community], settings: Settings,
                         timeout: float) -> float:
    """Wait until :func:`converged` reports nothing; the seconds it took."""
    started = time.monotonic()
    last: list[str] = []
    deadline = started + timeout
    while time.monotonic() < deadline:
        last = await converged(db, sandbox, communities, settings)
        if not last:
            return time.monotonic() - started
        await asyncio.sleep(0.5)  # the delivery log is large: do not starve the services
    raise AssertionError(f"not converged after {timeout}s: {last}")


async def expected_tickets(sandbox: RunningSandbox, communities: Iterable[Community]
                           ) -> Counter[tuple[str, ContentType]]:
    """Refresh tickets the delivered events must have taken: one per distinct event
    (VK's retries and duplicates of an event take none) and content type it touches.

    The delivery log keeps no event object; the events the scenarios cause are
    ``wall_post_new`` of plain posts and the two schedule events.
    """
    by_group = {community.group_id: community.project_id for community in communities}
    tickets: Counter[tuple[str, ContentType]] = Counter()
    seen: set[str] = set()
    for delivery in await sandbox.control.deliveries():
        project_id = by_group.get(delivery["group_id"])
        if project_id is None or not delivery["delivered"] or delivery["event_id"] in seen:
            continue
        seen.add(delivery["event_id"])
        for content in content_types_for(delivery["type"], {"post_type": "post"}):
            tickets[project_id, content] += 1
    return tickets


async def taken_tickets(db: AsyncDatabase[Document]) -> Counter[tuple[str, ContentType]]:
    return Counter({(state["project_id"], ContentType(state["content_type"])): int(state["requested"])
                    async for state in db[REFRESH_STATE].find({})})


def attempt_statuses(deliveries: Iterable[dict[str, Any]]) -> Counter[int | None]:
    return Counter(attempt["status"] for delivery in deliveries for attempt in delivery["attempts"])


# --- system posts ------------------------------------------------------------------------


async def plain_community(db: AsyncDatabase[Document], sandbox: RunningSandbox,
                          logbook: LogBook) -> Community:
    """A sandbox community with its own admin and its project, without callbacks."""
    created = await sandbox.control.create_community()
    admin = await sandbox.control.create_user(admin_of=[created.group_id])
    logbook.register(created.community_token, admin.token)
    project_id = await insert_project(db, group_id=created.group_id, token=admin.token)
    return Community(created.group_id, admin.token, community_token=created.community_token,
                     confirmation_code=created.confirmation_code, project_id=project_id)


async def wall_texts(sandbox: RunningSandbox, group_id: int) -> Counter[str]:
    """How many published posts carry each text (hidden ones included)."""
    return Counter(post["text"] for post in (await sandbox.control.wall(group_id))["published"])


async def wall_post_calls(sandbox: RunningSandbox, text: str) -> int:
    return sum(1 for call in await sandbox.control.calls("wall.post")
               if call["params"].get("message") == text)
