"""Scenario 9: VK misbehaving — error 6/10 bursts, 5xx, answers slower than the client's
timeout, malformed JSON, a long outage, and permanent errors (5: the token is bad).

The services keep running; retries are bounded (calls are counted in the sandbox);
state converges once VK recovers; permanent errors surface where the README says:
``projects.refresh_status.<content>`` for refreshes, ``status=error`` with the error
text for system posts. A ``wall.post`` whose outcome is unknown is never repeated.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections import Counter
from functools import partial
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from shared.mongo import PROJECTS, REFRESH_STATE, SYSTEM_POSTS, ContentType, Document
from shared.settings import Settings
from tests.resilience.harness import LogBook, ServiceGroup
from tests.resilience.stack import (
    cache_mismatches,
    cached_ids,
    connect_communities,
    left_behind,
    plain_community,
    queue_depths,
    stack_settings,
    wall_post_calls,
    wall_texts,
)
from tests.support.documents import insert_post, insert_project
from tests.support.sandbox import RunningSandbox
from tests.support.scenarios import Figures, Mode
from tests.support.waiting import eventually

MAX_ATTEMPTS = 3  # VK_MAX_ATTEMPTS: tries of one call inside one refresh
TIMEOUT = 1.0  # VK_TIMEOUT_SECONDS
BURST = MAX_ATTEMPTS - 1  # failures in a row that one refresh rides out
# The client's shortest pauses between tries (DEFAULT_BACKOFF, jitter 0.5): 0.25, 0.5 s.
MIN_SECONDS_PER_FAILED_REFRESH = 0.25 + 0.5

# Bursts that the client's own retries ride out: (fault, spec).
BURSTS: list[tuple[str, dict[str, Any]]] = [  # kind, then its parameters
    ("error 6", {"kind": "error", "code": 6}),
    ("error 10", {"kind": "error", "code": 10}),
    ("HTTP 502", {"kind": "http_status", "status": 502}),
    ("malformed JSON", {"kind": "malformed"}),
]


async def published_status(db: AsyncDatabase[Document], project_id: str) -> dict[str, Any]:
    project = await db[PROJECTS].find_one({"_id": project_id})
    assert project is not None
    status: dict[str, Any] = project.get("refresh_status", {}).get(ContentType.PUBLISHED.value, {})
    return status


async def wall_gets(sandbox: RunningSandbox) -> int:
    return len(await sandbox.control.calls("wall.get"))


class TestVkMisbehavingForTheRefresher:
    async def test_bursts_slowness_outages_and_a_permanent_error(
        self, mode: Mode, vk_settings: Settings, vk_sandbox: RunningSandbox,
        db: AsyncDatabase[Document], services: ServiceGroup, logbook: LogBook, figures: Figures,
    ) -> None:
        """Each burst of 2 failures (error 6, error 10, 502, malformed JSON) costs exactly
        2 + 1 wall.get and the refresh lands; answers slower than the timeout and an
        outage of 5 s (long: 30 s) make the refresh retry with backoff (calls bounded),
        show "(will retry)" on the project, and land once VK recovers. A permanent error
        (5) costs one call, is recorded on the project (``refresh_status.published``:
        ok false, VK's error) and not retried: the token rests, the next event calls VK
        not at all, and a new token stored for the project is used at once."""
        outage = mode.pick(5.0, 30.0)
        stack = stack_settings(vk_settings, vk_max_attempts=MAX_ATTEMPTS, vk_timeout_seconds=TIMEOUT)
        gateway, refresher = await services.start_many(("callback_gateway", stack),
                                                       ("refresher", stack))
        [community] = await connect_communities(db, vk_sandbox, stack, logbook, 1)
        control = vk_sandbox.control
        calls_per_burst: dict[str, int] = {}

        async def refreshed(post_id: int) -> bool:
            return post_id in await cached_ids(db, community.project_id, ContentType.PUBLISHED)

        for name, spec in BURSTS:
            await control.clear_calls()
            await control.inject_fault(str(spec["kind"]), method="wall.get", count=BURST,
                                       **{k: v for k, v in spec.items() if k != "kind"})
            post = await control.create_post(community.group_id, f"after {name}")
            await eventually(partial(refreshed, post["id"]), timeout=20,
                             what=f"the refresh through a burst of {name}")
            calls_per_burst[name] = await wall_gets(vk_sandbox)
            assert calls_per_burst[name] == BURST + 1, (name, await control.calls("wall.get"))
            assert (await published_status(db, community.project_id))["ok"] is True

        episodes: dict[str, dict[str, Any]] = {}
        long_faults: list[tuple[str, str, dict[str, Any]]] = [
            ("slower than the timeout", "latency", {"seconds": TIMEOUT + 0.5}),
            ("outage (error 10)", "error", {"code": 10, "count": 100_000})]
        for name, kind, spec in long_faults:
            await control.clear_calls()
            await control.inject_fault(kind, method="wall.get", **spec)
            started = time.monotonic()
            post = await control.create_post(community.group_id, f"during {name}")

            async def will_retry() -> bool:
                error = (await published_status(db, community.project_id)).get("error") or ""
                return "will retry" in error

            await eventually(will_retry, timeout=outage + 20, what=f"'(will retry)' during {name}")
            # The outage lasts its whole length (VK is down: there is nothing to wait for).
            await asyncio.sleep(max(0.0, outage - (time.monotonic() - started)))
            await control.clear_faults()
            during = await wall_gets(vk_sandbox)
            window = time.monotonic() - started
            bound = MAX_ATTEMPTS * math.ceil(window / MIN_SECONDS_PER_FAILED_REFRESH + 1)
            assert during <= bound, (name, during, bound)
            await eventually(partial(refreshed, post["id"]), timeout=60,
                             what=f"the refresh after {name}")

            async def recorded_ok() -> bool:
                # Written right after the snapshot's transaction, so it may trail the cache.
                status = await published_status(db, community.project_id)
                return status["ok"] is True and status["error"] is None

            await eventually(recorded_ok, timeout=10, what=f"refresh_status ok after {name}")
            episodes[name] = {"seconds": round(window, 1), "wall_get_calls": during,
                              "bound": bound}

        # A permanent error (5: the token is refused): one call, recorded, not retried.
        await control.clear_calls()
        await control.inject_fault("error", method="wall.get", code=5, count=1)
        await control.create_post(community.group_id, "while the token is refused")

        async def failed() -> dict[str, Any] | None:
            status = await published_status(db, community.project_id)
            return status if status.get("ok") is False else None

        status = await eventually(failed, timeout=15, what="refresh_status with the error")
        assert "VK error 5" in status["error"] and "will retry" not in status["error"]
        key = f"{community.project_id}:{ContentType.PUBLISHED.value}"

        async def done() -> bool:  # a permanent failure completes the round
            state = await db[REFRESH_STATE].find_one({"_id": key})
            return state is not None and state["completed"] == state["requested"]

        await eventually(done, timeout=10, what="the failed refresh's round completed")
        assert await wall_gets(vk_sandbox) == 1
        # The token rests: the next event's refresh records the same error, calls nobody.
        resting = await control.create_post(community.group_id, "while the token rests")
        requested = (await db[REFRESH_STATE].find_one({"_id": key}) or {})["requested"]

        async def next_round_done() -> bool:
            state = await db[REFRESH_STATE].find_one({"_id": key})
            return state is not None and state["completed"] == state["requested"] > requested

        await eventually(next_round_done, timeout=15, what="the resting token's round")
        assert await wall_gets(vk_sandbox) == 1
        assert not await refreshed(resting["id"])
        # An operator stores a new token: it is used at once.
        admin = await control.create_user(admin_of=[community.group_id])
        await db[PROJECTS].update_one({"_id": community.project_id},
                                      {"$set": {"vk_user_token": admin.token}})
        post = await control.create_post(community.group_id, "after the token is replaced")
        await eventually(partial(refreshed, post["id"]), timeout=15, what="the next refresh")
        status = await published_status(db, community.project_id)
        assert status["ok"] is True and status["error"] is None
        episodes["permanent (error 5)"] = {"wall_get_calls": 1, "retried": False,
                                           "calls_while_resting": 0}

        assert await cache_mismatches(db, vk_sandbox, [community], stack) == []
        assert left_behind(await queue_depths(stack), "refresher") == {}
        assert gateway.alive and refresher.alive and len(services.processes) == 2
        figures.record(burst_calls=calls_per_burst, episodes=episodes,
                       client_retries=len(refresher.events("vk_call_retry")),
                       refresh_retries=len(refresher.events("refresh_will_retry")))

async def settled(db: AsyncDatabase[Document], post_id: Any, timeout: float) -> Document | str:
    """The post's terminal document, or ``"verified"`` once it is deleted."""
    async def probe() -> Document | str | None:
        document = await db[SYSTEM_POSTS].find_one({"_id": post_id})
        if document is None:
            return "verified"
        return document if document["status"] in ("error", "possible_error") else None
    return await eventually(probe, timeout=timeout, what=f"post {post_id} settled")


class TestVkMisbehavingForTheTracker:
    async def test_wall_post_failures_end_as_documented_and_nothing_is_sent_twice(
        self, mode: Mode, vk_settings: Settings, vk_sandbox: RunningSandbox,
        db: AsyncDatabase[Document], services: ServiceGroup, logbook: LogBook, figures: Figures,
    ) -> None:
        """wall.post answered 502, malformed JSON or error 10 (outcome unknown, nothing
        posted): not on the wall, so re-sent once with the same guid, verified, on the wall
        once. Answered after the client's timeout (VK did publish): verified, on the wall
        once (re-sent with the same guid if the look came first: VK answers the same post).
        Error 6: refused for sure, sent again after a back-off, verified, on the wall once.
        A bad token (error 5): status error with VK's message, sent once.
        (1 round; long: 3.)"""
        rounds = mode.pick(1, 3)
        stack = stack_settings(vk_settings, tracker_interval_seconds=1.0, vk_timeout_seconds=2.0,
                               tracker_verify_timeout_seconds=5.0)
        tracker = await services.start("post_tracker", stack)
        community = await plain_community(db, vk_sandbox, logbook)
        control = vk_sandbox.control
        outcomes: Counter[str] = Counter()
        calls: dict[str, int] = {}
        expected_calls: dict[str, int] = {}
        expected_on_wall: dict[str, int] = {}
        for _ in range(rounds):
            tag = uuid.uuid4().hex[:6]
            revoked = f"revoked-{uuid.uuid4().hex}"
            logbook.register(revoked)
            broken = await insert_project(db, group_id=community.group_id, token=revoked,
                                          _id=f"broken-{tag}")
            text = f"bad token {tag}"
            document = await settled(db, await insert_post(db, broken, text), timeout=15)
            assert isinstance(document, dict) and document["status"] == "error"
            assert document["error_code"] == 5 and "VK error 5" in document["error"]
            assert "User authorization failed" in document["error"]
            assert revoked not in document["error"]
            expected_calls[text], expected_on_wall[text] = 1, 0
            outcomes["error 5: error"] += 1

            await control.inject_fault("http_status", method="wall.post", status=502, count=1)
            await control.inject_fault("malformed", method="wall.post", count=1)
            await control.inject_fault("error", method="wall.post", code=10, count=1)
            names = ("502", "malformed", "error 10")
            unknown = [f"unknown outcome {name} {tag}" for name in names]
            posts = [await insert_post(db, community.project_id, text) for text in unknown]
            for name, post_id, text in zip(names, posts, unknown, strict=True):
                assert await settled(db, post_id, timeout=20) == "verified", name
                expected_calls[text], expected_on_wall[text] = 2, 1
                outcomes[f"{name}: re-sent with its guid, verified"] += 1

            await control.inject_fault("latency", method="wall.post", seconds=3.0)
            slow = f"answered too late {tag}"
            slow_post = await insert_post(db, community.project_id, slow)

            async def sent(slow: str = slow) -> bool:
                return await wall_post_calls(vk_sandbox, slow) == 1

            await eventually(sent, timeout=10, what="the slow wall.post sent")
            await control.clear_faults()
            assert await settled(db, slow_post, timeout=20) == "verified"
            # 1, or 2 when the look came before VK had posted (same guid, same post).
            expected_calls[slow] = min(await wall_post_calls(vk_sandbox, slow), 2)
            expected_on_wall[slow] = 1
            outcomes["slower than the timeout: verified"] += 1

            await control.inject_fault("error", method="wall.post", code=6, count=1)
            refused = f"refused with 6 {tag}"
            assert await settled(db, await insert_post(db, community.project_id, refused),
                                 timeout=30) == "verified"
            expected_calls[refused], expected_on_wall[refused] = 2, 1
            outcomes["error 6: verified"] += 1

        calls = {text: await wall_post_calls(vk_sandbox, text) for text in expected_calls}
        assert calls == expected_calls
        on_wall = await wall_texts(vk_sandbox, community.group_id)
        assert {text: on_wall[text] for text in expected_on_wall} == expected_on_wall
        assert tracker.alive
        assert (await db[SYSTEM_POSTS].count_documents({"status": "publishing"})) == 0
        figures.record(outcomes=dict(outcomes), wall_post_calls=sum(calls.values()),
                       published=sum(expected_on_wall.values()), double_publications=0)
