"""Scenario 12: crash takeover with the default leases — a post tracker ``kill -9``ed while
it holds a project's lease, and how soon the project's posts go out again (the
refresher's counterpart is scenario 2, ``test_refresher_crash.py``, at the default lease).

Leases are 10 s and renewed every ~3.3 s by a live holder (``shared/leases.py``), so a
dead holder's project is taken over within about one lease: by a standby replica's
scheduling cycle or by the restarted process.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter

from pymongo.asynchronous.database import AsyncDatabase

from shared.mongo import POST_TRACKER_LEASES, Document
from shared.settings import Settings
from tests.resilience.harness import LogBook, ServiceGroup
from tests.resilience.stack import (
    plain_community,
    stack_settings,
    wall_post_calls,
    wall_texts,
)
from tests.support.documents import insert_post
from tests.support.sandbox import RunningSandbox
from tests.support.scenarios import Figures, Mode
from tests.support.waiting import eventually
from tools.processes import ChildProcess

DEFAULT_TRACKER_LEASE = Settings.model_fields["tracker_lease_seconds"].default
# Takeover lands within a lease + the sweep/recheck (1 s) + the work itself; the bound
# leaves room for a busy 2-core machine.
SLACK_SECONDS = 15.0


def defaults(settings: Settings) -> Settings:
    """The stack's settings with the production lease length."""
    return stack_settings(settings, tracker_lease_seconds=DEFAULT_TRACKER_LEASE)


async def lease_holder(db: AsyncDatabase[Document], project_id: str,
                       trackers: list[ChildProcess]) -> ChildProcess | None:
    """The tracker process holding the project's lease (owner is ``host:pid:suffix``)."""
    lease = await db[POST_TRACKER_LEASES].find_one({"_id": project_id, "owner": {"$ne": None}})
    if lease is None:
        return None
    pid = int(str(lease["owner"]).split(":")[1])
    return next((tracker for tracker in trackers if tracker.pid == pid), None)


class TestCrashTakeoverWithDefaults:
    async def test_a_killed_trackers_project_is_taken_over_within_the_lease(
        self, mode: Mode, vk_settings: Settings, vk_sandbox: RunningSandbox,
        db: AsyncDatabase[Document], services: ServiceGroup, logbook: LogBook, figures: Figures,
    ) -> None:
        """The tracker holding a project's lease dies inside ``wall.post`` (held 3 s in
        VK); a post due right after the crash is sent by the restarted process (long: 3
        rounds of that and of a standby tracker) within the default lease (10 s) + slack.
        No post is published twice."""
        rounds = mode.pick(1, 3)
        ways = mode.pick(("restart",), ("standby", "restart"))
        stack = defaults(vk_settings).model_copy(update={"tracker_verify_timeout_seconds": 20.0})
        community = await plain_community(db, vk_sandbox, logbook)
        trackers = await services.start_many(("post_tracker", stack), ("post_tracker", stack))
        takeovers: dict[str, list[float]] = {"standby": [], "restart": []}
        texts: list[str] = []
        for round_number in range(rounds):
            for way in ways:
                if way == "restart":
                    await trackers.pop().stop()
                tag = f"{way} {round_number} {uuid.uuid4().hex[:6]}"
                await vk_sandbox.control.inject_fault("latency", method="wall.post", seconds=3.0)
                in_flight = f"in flight when killed {tag}"
                await insert_post(db, community.project_id, in_flight)

                async def sending(text: str = in_flight) -> ChildProcess | None:
                    if await wall_post_calls(vk_sandbox, text) == 0:
                        return None
                    return await lease_holder(db, community.project_id, trackers)

                victim = await eventually(sending, timeout=20, what="wall.post in flight")
                await victim.kill()
                died = time.monotonic()
                trackers.remove(victim)
                await vk_sandbox.control.clear_faults()
                if way == "restart":
                    trackers.append(await services.start("post_tracker", stack))
                after = f"due after the crash {tag}"
                await insert_post(db, community.project_id, after)

                async def sent(text: str = after) -> bool:
                    return await wall_post_calls(vk_sandbox, text) >= 1

                await eventually(sent, timeout=DEFAULT_TRACKER_LEASE + SLACK_SECONDS,
                                 interval=0.1, what="the next post sent by another tracker")
                takeovers[way].append(round(time.monotonic() - died, 1))
                texts += [in_flight, after]
                while len(trackers) < 2:
                    trackers.append(await services.start("post_tracker", stack))
        on_wall: Counter[str] = await wall_texts(vk_sandbox, community.group_id)
        assert all(on_wall[text] <= 1 for text in texts)
        assert all(on_wall[text] == 1 for text in texts if text.startswith("due after"))
        figures.record(lease_seconds=DEFAULT_TRACKER_LEASE, tracker_takeover_seconds=takeovers,
                       posts=len(texts), published=sum(on_wall[text] for text in texts))
