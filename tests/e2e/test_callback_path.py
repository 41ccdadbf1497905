from __future__ import annotations

import time
from collections import Counter
from functools import partial
from typing import Any

import aiohttp
import pytest
from pymongo.asynchronous.database import AsyncDatabase

from shared.mongo import PROJECTS, REFRESH_STATE, ContentType, Document
from shared.settings import Settings
from tests.e2e.stack import (
    cached_ids,
    callback_path,
    connected_community,
    gateway_url,
    notifier_url,
    stack_settings,
)
from tests.support.communities import Community
from tests.support.rabbit import broker_stopped
from tests.support.sandbox import RunningSandbox
from tests.support.waiting import eventually
from tests.update_notifier.sse_client import SseStream
from tools.vk_sandbox import SandboxConfig


async def get_updates(http: aiohttp.ClientSession, settings: Settings,
                      body: dict[str, object] | None = None) -> dict[str, Any]:
    async with http.post(notifier_url(settings, "/api/getUpdates"), json=body or {}) as response:
        assert response.status == 200, await response.text()
        result: dict[str, Any] = await response.json()
        return result


class TestCallbackPath:
    async def test_scheduled_post_flows_from_vk_to_the_cache_and_the_frontend(
        self, vk_settings: Settings, vk_sandbox: RunningSandbox, db: AsyncDatabase[Document]
    ) -> None:
        """Handshake; a scheduled post reaches scheduled_posts, getUpdates (both modes) and SSE."""
        settings = stack_settings(vk_settings)
        async with callback_path(settings, notifiers=1), aiohttp.ClientSession() as http:
            community = await connected_community(db, vk_sandbox, settings)
            cursor = (await get_updates(http, settings, {"cursor": None}))["cursor"]
            await get_updates(http, settings)  # the legacy set starts empty from here
            async with http.get(notifier_url(settings, "/api/updates/stream")) as response:
                stream = SseStream(response)
                assert (await stream.next_event()).event == "ready"
                post = await vk_sandbox.control.create_post(
                    community.group_id, "Planned", publish_date=int(time.time()) + 3600)

                async def scheduled() -> set[int]:
                    return await cached_ids(db, community.project_id, ContentType.SCHEDULED)

                assert await eventually(scheduled, what="the post in MongoDB") == {post["id"]}
                pushed = await stream.next_event()
                assert (pushed.event, pushed.data["projectId"]) == ("update", community.project_id)

            polled = await get_updates(http, settings, {"cursor": cursor})
            assert polled["updatedProjectIds"] == [community.project_id]
            legacy = await get_updates(http, settings)
            assert legacy["updatedProjectIds"] == [community.project_id]
            assert (await get_updates(http, settings))["updatedProjectIds"] == []

            await vk_sandbox.control.delete_post(community.group_id, post["id"])

            async def removed() -> bool:
                return not await scheduled()

            await eventually(removed, what="the deleted post gone from MongoDB")
            deliveries = await vk_sandbox.control.deliveries(group_id=community.group_id)
            assert deliveries and all(d["delivered"] for d in deliveries)


async def wall_get_calls(sandbox: RunningSandbox) -> list[dict[str, object]]:
    return await sandbox.control.calls("wall.get")


class TestEventNames:
    async def test_seed_and_official_schedule_names_both_refresh(
        self, vk_settings: Settings, vk_sandbox: RunningSandbox, db: AsyncDatabase[Document]
    ) -> None:
        """postponed_new (the product's docs) and wall_schedule_post_delete (VK) refresh the schedule."""
        settings = stack_settings(vk_settings)
        async with callback_path(settings), aiohttp.ClientSession() as http:
            community = await connected_community(db, vk_sandbox, settings)
            project = await db[PROJECTS].find_one({"_id": community.project_id})
            assert project is not None
            for name in ("postponed_new", "wall_schedule_post_delete"):
                await vk_sandbox.control.clear_calls()
                async with http.post(gateway_url(settings), json={
                    "type": name, "group_id": community.group_id, "event_id": f"{name}-1",
                    "object": {"id": 1}, "secret": project["vk_callback_secret"],
                }) as response:
                    assert (response.status, await response.text()) == (200, "ok")

                async def refreshed() -> bool:
                    calls = await wall_get_calls(vk_sandbox)
                    return any(c["params"]["filter"] == "postponed" for c in calls)  # type: ignore[index]

                await eventually(refreshed, what=f"a schedule refresh for {name}")


async def published_matches_sandbox(db: AsyncDatabase[Document], sandbox: RunningSandbox,
                                    community: Community) -> bool:
    wall = await sandbox.control.wall(community.group_id)
    expected = {post["id"] for post in wall["published"]}
    return await cached_ids(db, community.project_id, ContentType.PUBLISHED) == expected


class TestBurst:
    async def test_thousand_callbacks_cost_a_few_wall_gets_and_end_consistent(
        self, vk_settings: Settings, vk_sandbox: RunningSandbox, db: AsyncDatabase[Document]
    ) -> None:
        """1000 callbacks over 10 projects: few wall.get per project, no error 6, caches == walls."""
        settings = stack_settings(vk_settings)
        async with callback_path(settings):
            communities = [await connected_community(db, vk_sandbox, settings) for _ in range(10)]
            await vk_sandbox.control.clear_calls()
            events = [(c.group_id, "wall_post_new", {"id": n, "post_type": "post"})
                      for n in range(100) for c in communities]
            t0 = time.monotonic()
            await vk_sandbox.control.send_callbacks(events)
            for community in communities:  # real changes land during the burst
                await vk_sandbox.control.create_post(community.group_id, "during the burst")

            async def all_delivered() -> bool:
                deliveries = await vk_sandbox.control.deliveries(event_type="wall_post_new")
                return len(deliveries) == 1010 and all(d["delivered"] for d in deliveries)

            # The delivery log is large; polling it often would starve the services.
            await eventually(all_delivered, timeout=60, interval=0.5,
                             what="1010 deliveries answered ok")
            delivered_at = time.monotonic()
            for community in communities:
                await eventually(partial(published_matches_sandbox, db, vk_sandbox, community),
                                 timeout=30, what=f"community {community.group_id} consistent")

            calls = await wall_get_calls(vk_sandbox)
            per_community = Counter(c["params"]["owner_id"] for c in calls)  # type: ignore[index]
            assert [c for c in calls if c["error_code"] is not None] == []
            assert len(per_community) == 10
            # Coalescing: rounds at least the base spacing apart (further while the key
            # is busy), plus the first and the last — instead of one per callback (101 each).
            burst_seconds = delivered_at - t0
            bound = burst_seconds / settings.refresher_round_spacing_seconds + 3
            assert max(per_community.values()) <= bound, (per_community, burst_seconds)
            assert sum(per_community.values()) <= 0.3 * len(events)


class TestDuplicates:
    async def test_duplicate_event_id_costs_one_refresh(
        self, vk_settings: Settings, vk_sandbox: RunningSandbox, db: AsyncDatabase[Document]
    ) -> None:
        """VK delivering the same event twice leads to one ticket and one wall.get."""
        settings = stack_settings(vk_settings)
        async with callback_path(settings):
            community = await connected_community(db, vk_sandbox, settings)
            await vk_sandbox.control.clear_calls()
            await vk_sandbox.control.inject_fault("duplicate_callbacks", count=1)
            post = await vk_sandbox.control.create_post(community.group_id, "Once")

            async def delivered_twice() -> bool:
                deliveries = await vk_sandbox.control.deliveries(event_type="wall_post_new")
                return len(deliveries) == 2 and all(d["delivered"] for d in deliveries)

            await eventually(delivered_twice, what="both copies answered ok")
            assert await eventually(partial(published_matches_sandbox, db, vk_sandbox, community))

            async def refresh_states() -> list[Document] | None:
                states = await db[REFRESH_STATE].find({}).to_list()
                return states if all(s["completed"] == s["requested"] for s in states) else None

            [refresh_state] = await eventually(refresh_states, what="the refresh completed")
            assert (refresh_state["requested"], refresh_state["completed"]) == (1, 1)
            assert len(await wall_get_calls(vk_sandbox)) == 1
            assert post["id"] in await cached_ids(db, community.project_id, ContentType.PUBLISHED)


class TestReplicas:
    async def test_two_refreshers_and_two_notifiers_agree(
        self, vk_settings: Settings, vk_sandbox: RunningSandbox, db: AsyncDatabase[Document]
    ) -> None:
        """With replicas, caches match the walls and a cursor chain across both notifiers
        sees every project exactly once."""
        settings = stack_settings(vk_settings)
        async with callback_path(settings, refreshers=2, notifiers=2) as notifiers, \
                aiohttp.ClientSession() as http:
            communities = [await connected_community(db, vk_sandbox, settings) for _ in range(4)]
            cursor = (await get_updates(http, notifiers[0], {"cursor": None}))["cursor"]
            for community in communities:
                await vk_sandbox.control.create_post(community.group_id, "Now")
                await vk_sandbox.control.create_post(community.group_id, "Later",
                                                     publish_date=int(time.time()) + 600)
            for community in communities:
                await eventually(partial(published_matches_sandbox, db, vk_sandbox, community),
                                 what="published caches consistent")

            seen: list[str] = []

            async def chain_sees_all() -> bool:
                nonlocal cursor
                replica = notifiers[len(seen) % 2]
                answer = await get_updates(http, replica, {"cursor": cursor})
                cursor = answer["cursor"]
                seen.extend(answer["updatedProjectIds"])
                return {c.project_id for c in communities} <= set(seen)

            await eventually(chain_sees_all, what="every project on the cursor chain")
            # Per poll a project appears at most once; across polls it may reappear only
            # for a later update (each refresh is an update).
            assert len(set(seen)) == len(communities)


class TestBrokerOutage:
    @pytest.fixture
    def sandbox_config(self) -> SandboxConfig:
        """VK's retry schedule only 100× faster (about a minute after the gateway's first
        ``Retry-After: 5``): a RabbitMQ restart plus the client's reconnect outlast the
        1000× faster default, as they would not outlast VK's real 1 h 43 min."""
        return SandboxConfig(retry_scale=0.01)

    async def test_broker_down_means_503_and_vk_retry_lands_the_event(
        self, vk_settings: Settings, vk_sandbox: RunningSandbox, db: AsyncDatabase[Document]
    ) -> None:
        """With RabbitMQ stopped the gateway answers 503 + Retry-After; VK's retry lands it."""
        settings = stack_settings(vk_settings)
        async with callback_path(settings):
            community = await connected_community(db, vk_sandbox, settings)
            async with broker_stopped():
                post = await vk_sandbox.control.create_post(community.group_id, "During outage")

                async def refused() -> list[dict[str, Any]]:
                    deliveries = await vk_sandbox.control.deliveries(event_type="wall_post_new")
                    return [a for d in deliveries for a in d["attempts"] if a["status"] == 503]

                assert await eventually(refused, what="a 503 answer")
            [delivery] = await vk_sandbox.control.deliveries(event_type="wall_post_new")

            async def landed() -> set[int]:
                return await cached_ids(db, community.project_id, ContentType.PUBLISHED)

            assert post["id"] in await eventually(landed, timeout=60, what="the event after the outage")
            [delivery] = await vk_sandbox.control.deliveries(event_type="wall_post_new")
            assert delivery["delivered"]
            assert delivery["attempts"][0]["status"] == 503
            assert delivery["attempts"][-1]["retry_counter"] >= 1
