"""Coalescing refreshes of one (project, content type) across events, tasks and replicas.

The protocol, on one ``refresh_state`` document per key (MongoDB's clock decides
lease expiry, so replicas' clocks need not agree):

1. Every event takes a **ticket**: ``requested += 1``.
2. It then tries to take the **lease** (free or expired). The lease carries a
   **fence**, incremented at each take, that guards the snapshot write
   (:mod:`services.refresher.snapshot`).
3. The lease holder refreshes in **rounds**: a round covers every ticket issued
   before it started (``target = requested``); afterwards ``completed = target``,
   and the lease is released only if no ticket arrived meanwhile — otherwise
   another round runs. So any number of events during a refresh cost one more
   refresh, and none is left unrefreshed.
4. Everyone else waits until ``completed >= ticket`` (their event is covered) or
   the lease expires (its holder died) and they take it over.

The event's message is acknowledged only after that, so a crash anywhere leaves
it unacked and redelivered: nothing is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog
from pymongo import ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection

from shared.mongo import Document

log = structlog.get_logger(__name__)

Refresh = Callable[[int], Awaitable[None]]  # called with the lease's fence


class LeaseLost(Exception):
    """Our lease expired and someone else took it; stop writing."""


@dataclass(frozen=True, slots=True)
class Lease:
    key: str
    owner: str
    fence: int
    requested: int  # tickets issued when the lease was taken


class RefreshCoordinator:
    def __init__(self, states: AsyncCollection[Document], owner: str, lease_seconds: float,
                 poll_seconds: float = 0.1) -> None:
        self._states = states
        self._owner = owner
        self._lease_ms = int(lease_seconds * 1000)
        self._poll_seconds = poll_seconds
        # Waiters in this process are woken as soon as a local round completes.
        self._round_done: dict[str, asyncio.Event] = {}

    async def ensure_refreshed(self, key: str, refresh: Refresh) -> bool:
        """Return once a refresh that started after this call has completed.

        True if this call ran the refresh itself, False if another covered it.
        """
        ticket = await self._take_ticket(key)
        while True:
            lease = await self._try_acquire(key)
            if lease is not None:
                await self._run_rounds(lease, refresh)
                return True
            if await self._wait(key, ticket):
                return False

    async def _take_ticket(self, key: str) -> int:
        state = await self._states.find_one_and_update(
            {"_id": key}, {"$inc": {"requested": 1}}, upsert=True,
            return_document=ReturnDocument.AFTER)
        assert state is not None
        return int(state["requested"])

    async def _try_acquire(self, key: str) -> Lease | None:
        state = await self._states.find_one_and_update(
            {"_id": key, "$or": [{"lease_owner": None},
                                 {"$expr": {"$lt": ["$lease_until", "$$NOW"]}}]},
            [{"$set": {"lease_owner": self._owner,
                       "lease_until": {"$add": ["$$NOW", self._lease_ms]},
                       "fence": {"$add": [{"$ifNull": ["$fence", 0]}, 1]}}}],
            return_document=ReturnDocument.AFTER)
        if state is None:
            return None
        return Lease(key, self._owner, int(state["fence"]), int(state["requested"]))

    async def _run_rounds(self, lease: Lease, refresh: Refresh) -> None:
        target = lease.requested
        heartbeat = asyncio.create_task(self._keep_alive(lease))
        try:
            while True:
                await refresh(lease.fence)
                next_target = await self._finish_round(lease, target)
                self._wake_local_waiters(lease.key)
                if next_target is None:
                    return
                target = next_target
        except BaseException:
            await self._release(lease)
            raise
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError, LeaseLost):
                await heartbeat

    async def _finish_round(self, lease: Lease, target: int) -> int | None:
        """Mark ``target`` completed; release if nothing new came, else return the new target."""
        mine: dict[str, Any] = {"_id": lease.key, "lease_owner": lease.owner, "fence": lease.fence}
        state = await self._states.find_one_and_update(
            mine, {"$max": {"completed": target}}, return_document=ReturnDocument.AFTER)
        if state is None:
            raise LeaseLost(lease.key)
        if int(state["requested"]) == target:
            released = await self._states.find_one_and_update(
                {**mine, "requested": target}, {"$set": {"lease_owner": None, "lease_until": None}})
            if released is not None:
                return None
            state = await self._states.find_one(mine)
            if state is None:
                raise LeaseLost(lease.key)
        return int(state["requested"])

    async def _release(self, lease: Lease) -> None:
        with contextlib.suppress(Exception):
            await self._states.update_one(
                {"_id": lease.key, "lease_owner": lease.owner, "fence": lease.fence},
                {"$set": {"lease_owner": None, "lease_until": None}})

    async def _keep_alive(self, lease: Lease) -> None:
        while True:
            await asyncio.sleep(self._lease_ms / 3000)
            renewed = await self._states.update_one(
                {"_id": lease.key, "lease_owner": lease.owner, "fence": lease.fence},
                [{"$set": {"lease_until": {"$add": ["$$NOW", self._lease_ms]}}}])
            if renewed.matched_count == 0:
                log.warning("refresh_lease_lost", key=lease.key)
                raise LeaseLost(lease.key)

    async def _wait(self, key: str, ticket: int) -> bool:
        """Wait a little; True once ``ticket`` is covered, False to retry taking the lease."""
        event = self._round_done.setdefault(key, asyncio.Event())
        # Jitter spreads the polls of many waiters on one key.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), self._poll_seconds * (1 + random.random()))
        state = await self._states.find_one(
            {"_id": key}, projection={"completed": 1, "lease_owner": 1})
        return state is not None and int(state.get("completed", 0)) >= ticket

    def _wake_local_waiters(self, key: str) -> None:
        if (event := self._round_done.pop(key, None)) is not None:
            event.set()
