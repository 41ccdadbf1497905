"""Scenario 2: ``kill -9`` of the refresher that holds a refresh's lease, inside the VK call.

The event was acknowledged once its ticket was durable (``refresh_state.requested``),
so the broker will not hand it out again: the pending work (``requested >
completed``) must be taken over by another replica's sweeper, or by the restarted
process, once the dead holder's lease (``REFRESHER_LEASE_SECONDS``, at its default)
runs out.
"""

from __future__ import annotations

import time

from pymongo.asynchronous.database import AsyncDatabase

from shared.mongo import REFRESH_STATE, ContentType, Document
from shared.settings import Settings
from tests.resilience.harness import LogBook, ServiceGroup
from tests.resilience.stack import (
    cached_ids,
    connect_communities,
    left_behind,
    queue_depths,
    stack_settings,
    wait_converged,
)
from tests.support.communities import Community
from tests.support.sandbox import RunningSandbox
from tests.support.scenarios import Figures, Mode
from tests.support.waiting import eventually
from tools.processes import ChildProcess

LEASE_SECONDS = Settings.model_fields["refresher_lease_seconds"].default  # 10 s
SWEEP_SECONDS = 1.0  # RefreshCoordinator's sweep interval


def holder_pid(state: Document) -> int:
    """The PID in ``lease_owner`` (``host:pid``)."""
    return int(str(state["lease_owner"]).rsplit(":", 1)[1])


async def kill_inside_refresh(db: AsyncDatabase[Document], sandbox: RunningSandbox,
                              community: Community, replicas: list[ChildProcess], text: str
                              ) -> tuple[ChildProcess, int, float]:
    """Make a post (its callback takes a ticket) and ``kill -9`` the replica that holds the
    refresh's lease while its ``wall.get`` is in the sandbox. Returns the victim, the post
    id and when it died."""
    calls_before = len(await sandbox.control.calls("wall.get"))
    post = await sandbox.control.create_post(community.group_id, text)
    key = f"{community.project_id}:{ContentType.PUBLISHED.value}"

    async def in_refresh() -> Document | None:
        state = await db[REFRESH_STATE].find_one({"_id": key})
        if state is None or state["completed"] >= state["requested"] or not state["lease_owner"]:
            return None
        calls = await sandbox.control.calls("wall.get")
        asked = [c for c in calls[calls_before:] if c["params"]["owner_id"] == str(-community.group_id)]
        return state if asked else None

    state = await eventually(in_refresh, timeout=20, what="a refresh inside wall.get")
    [victim] = [replica for replica in replicas if replica.pid == holder_pid(state)]
    await victim.kill()
    return victim, int(post["id"]), time.monotonic()


async def wait_taken_over(db: AsyncDatabase[Document], community: Community, post_id: int,
                          timeout: float) -> None:
    key = f"{community.project_id}:{ContentType.PUBLISHED.value}"

    async def done() -> bool:
        state = await db[REFRESH_STATE].find_one({"_id": key})
        return (state is not None and state["completed"] >= state["requested"]
                and post_id in await cached_ids(db, community.project_id, ContentType.PUBLISHED))

    await eventually(done, timeout=timeout, interval=0.1, what="the refresh taken over")


class TestRefresherKilledMidRefresh:
    async def test_a_standby_replica_or_the_restarted_process_takes_the_work_over(
        self, mode: Mode, vk_settings: Settings, vk_sandbox: RunningSandbox,
        db: AsyncDatabase[Document], services: ServiceGroup, logbook: LogBook, figures: Figures,
    ) -> None:
        """Rounds (2; long: 8) alternate two situations, each killing the lease holder
        inside wall.get (held 2 s in VK; the default lease, 10 s):

        * two replicas run: the standby's sweeper finishes the refresh once the dead
          holder's lease has run out, then a fresh replica replaces the victim;
        * one replica runs: it is started again at once, and the new process waits out
          the lease and finishes the refresh.

        Each takeover lands within lease + sweep + two refreshes; then everything converges.
        """
        rounds = mode.pick(2, 8)
        latency = 2.0
        stack = stack_settings(vk_settings, refresher_lease_seconds=LEASE_SECONDS,
                               vk_timeout_seconds=latency + 5)
        await services.start("callback_gateway", stack)
        replicas = await services.start_many(("refresher", stack), ("refresher", stack))
        [community] = await connect_communities(db, vk_sandbox, stack, logbook, 1)
        await vk_sandbox.control.inject_fault("latency", method="wall.get", seconds=latency)
        takeovers: dict[str, list[float]] = {"standby": [], "restart": []}
        bound = LEASE_SECONDS + SWEEP_SECONDS + 2 * latency + 5
        for round_number in range(rounds):
            way = "standby" if round_number % 2 == 0 else "restart"
            if way == "restart":  # only one replica left running
                await replicas.pop().stop()
            victim, post_id, died = await kill_inside_refresh(
                db, vk_sandbox, community, replicas, f"round {round_number}")
            replicas.remove(victim)
            if way == "restart":
                replicas.append(await services.start("refresher", stack))
            await wait_taken_over(db, community, post_id, timeout=bound)
            takeovers[way].append(round(time.monotonic() - died, 1))
            while len(replicas) < 2:
                replicas.append(await services.start("refresher", stack))
        await vk_sandbox.control.clear_faults()
        await wait_converged(db, vk_sandbox, [community], stack, timeout=30)
        assert left_behind(await queue_depths(stack), "refresher") == {}
        assert all(replica.alive for replica in replicas)
        figures.record(kills=rounds, wall_get_latency=latency, lease_seconds=LEASE_SECONDS,
                       takeover_seconds=takeovers)
