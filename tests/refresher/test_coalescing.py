from __future__ import annotations

import asyncio

import pytest

from pymongo.asynchronous.database import AsyncDatabase

from services.refresher.coalescing import RefreshCoordinator
from shared.mongo import REFRESH_STATE, Document
from tests.waiting import eventually


class RecordingRefresh:
    """A refresh that records when it ran and which tickets existed when it started."""

    def __init__(self, duration: float = 0.05) -> None:
        self.duration = duration
        self.runs = 0
        self.fences: list[int] = []
        self.running = 0
        self.max_parallel = 0

    async def __call__(self, fence: int) -> None:
        self.runs += 1
        self.fences.append(fence)
        self.running += 1
        self.max_parallel = max(self.max_parallel, self.running)
        try:
            await asyncio.sleep(self.duration)
        finally:
            self.running -= 1


def coordinator(db: AsyncDatabase[Document], owner: str, lease: float = 5) -> RefreshCoordinator:
    return RefreshCoordinator(db[REFRESH_STATE], owner, lease_seconds=lease, poll_seconds=0.02)


class TestRefreshCoordinator:
    async def test_single_request_refreshes_once(self, db: AsyncDatabase[Document]) -> None:
        """One event, one refresh, run by the caller."""
        refresh = RecordingRefresh()
        assert await coordinator(db, "a").ensure_refreshed("p:scheduled", refresh) is True
        assert refresh.runs == 1

    async def test_burst_is_coalesced_across_replicas(self, db: AsyncDatabase[Document]) -> None:
        """200 concurrent events on two 'replicas' cost a handful of refreshes, never in parallel."""
        refresh = RecordingRefresh(duration=0.05)
        replicas = [coordinator(db, "a"), coordinator(db, "b")]
        results = await asyncio.gather(*(
            replicas[i % 2].ensure_refreshed("p:published", refresh) for i in range(200)))
        assert 1 <= refresh.runs <= 5
        assert refresh.max_parallel == 1
        assert results.count(True) >= 1
        fences = refresh.fences
        assert fences == sorted(fences)

    async def test_event_during_refresh_gets_another_round(self, db: AsyncDatabase[Document]) -> None:
        """An event arriving while a refresh runs is covered by a refresh that starts after it."""
        started = asyncio.Event()
        release = asyncio.Event()
        runs: list[str] = []

        async def slow_refresh(fence: int) -> None:
            runs.append("start")
            started.set()
            await release.wait()

        first = asyncio.create_task(coordinator(db, "a").ensure_refreshed("k", slow_refresh))
        await asyncio.wait_for(started.wait(), 5)
        second = asyncio.create_task(coordinator(db, "b").ensure_refreshed("k", slow_refresh))

        async def second_ticket_taken() -> bool:
            state = await db[REFRESH_STATE].find_one({"_id": "k"})
            return state is not None and state["requested"] == 2

        await eventually(second_ticket_taken, what="the second event's ticket")
        assert not second.done()
        release.set()
        await asyncio.wait_for(asyncio.gather(first, second), 5)
        assert runs == ["start", "start"]

    async def test_dead_holder_lease_is_taken_over(self, db: AsyncDatabase[Document]) -> None:
        """If the lease holder vanishes mid-refresh, a waiter takes over after the lease expires."""
        hang = asyncio.Event()

        async def never_finishes(fence: int) -> None:
            await hang.wait()

        dead = coordinator(db, "dead", lease=0.5)
        holder = asyncio.create_task(dead.ensure_refreshed("k2", never_finishes))

        async def lease_taken() -> bool:
            return await db[REFRESH_STATE].find_one({"_id": "k2", "lease_owner": "dead"}) is not None

        await eventually(lease_taken, what="the lease")
        holder.cancel()  # cancellation releases; simulate a crash by re-taking without release
        await asyncio.gather(holder, return_exceptions=True)
        await db[REFRESH_STATE].update_one({"_id": "k2"}, [{"$set": {
            "lease_owner": "crashed", "lease_until": {"$add": ["$$NOW", 500]}}}])
        refresh = RecordingRefresh()
        assert await coordinator(db, "alive", lease=0.5).ensure_refreshed("k2", refresh) is True
        assert refresh.runs == 1

    async def test_failed_refresh_releases_the_lease(self, db: AsyncDatabase[Document]) -> None:
        """A refresh that raises frees the lease at once so the retry need not wait for expiry."""
        async def failing(fence: int) -> None:
            raise RuntimeError("VK down")

        replica = coordinator(db, "a", lease=60)
        with pytest.raises(RuntimeError):
            await replica.ensure_refreshed("k3", failing)
        state = await db[REFRESH_STATE].find_one({"_id": "k3"})
        assert state is not None and state["lease_owner"] is None
        refresh = RecordingRefresh()
        assert await replica.ensure_refreshed("k3", refresh) is True
