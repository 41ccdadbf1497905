"""Coalescing refreshes of one (project, content type) across events, tasks and replicas.

The protocol, on one ``refresh_state`` document per key (MongoDB's clock decides
lease expiry and retry times, so replicas' clocks need not agree):

1. Every event takes a **ticket**: ``requested += 1``. Once that write returns,
   the work is durable — the event's message can be acknowledged. Pending work
   is simply ``requested > completed``. Within a process, events of one key that
   arrive while its ticket write is in flight share the next one (``requested +=
   n``; :mod:`services.refresher.batching`), so a hot key costs one write per
   round trip, not one per event.
2. Whoever holds the **lease** (free or expired → anyone may take it) *drains*
   the key in **rounds**: a round covers every ticket issued before it started
   (``target = requested``); afterwards ``completed = target``, and the lease is
   released only if no ticket arrived meanwhile — otherwise another round runs.
   So any number of events during a refresh cost one more refresh, and none is
   left unrefreshed. Rounds of a key are spaced (:mod:`services.refresher.spacing`:
   a quiet key at once, a busy one further apart the more events it gets), by
   ``round_started_at`` and ``round_spacing`` on the document (MongoDB's clock),
   also across lease releases and replicas, so a long burst costs a few refreshes,
   not one per event or per batch of events. A ticket written while this process's
   holder is finishing is taken at once: the finished drain starts another.
3. Each round takes a new **fence** (``fence += 1``) that guards its snapshot
   write (:mod:`services.refresher.snapshot`): later rounds, by anyone, win.
4. A refresh that fails transiently leaves the work pending with ``retry_at``
   (backoff); the **sweeper** of every replica picks up pending keys whose lease
   is free or expired (its holder died) and whose ``retry_at`` has passed. It logs
   every failure it survives (``refresh_sweep_failed``).
5. The lease (:mod:`shared.leases`, as ``lease_owner``, ``lease_token``,
   ``lease_until``) is short and renewed by a heartbeat while held, so a dead holder's
   keys are taken over within one lease.
   A lease still marked as this process's own (``owner`` is host:pid) while no task
   of it drains the key is stale — a drain that failed while MongoDB had no primary
   could not release it, or a restarted container got its predecessor's pid — and
   is taken again at once instead of waiting for it to expire.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from pymongo import ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection

from services.refresher.batching import Batcher
from services.refresher.spacing import RoundSpacing
from shared.clock import MonotonicClock, Sleep
from shared.leases import Lease, MongoLeases
from shared.mongo import ContentType, Document
from shared.retry import backoff_seconds
from shared.tasks import cancel_and_wait

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True, order=True)
class RefreshKey:
    project_id: str
    content: ContentType

    @property
    def id(self) -> str:
        return f"{self.project_id}:{self.content.value}"


# Runs one full refresh for a round; returns normally when done (including a
# permanent failure it has recorded), raises when it should be retried later.
Refresh = Callable[[RefreshKey, "Round"], Awaitable[None]]

# Pending work whose retry time has come (the lease's own condition is added to it).
PENDING_AND_DUE: dict[str, Any] = {
    "$expr": {"$gt": ["$requested", "$completed"]},
    "$and": [{"$or": [{"retry_at": None}, {"$expr": {"$lte": ["$retry_at", "$$NOW"]}}]}],
}


@dataclass(frozen=True, slots=True)
class KeyLease:
    """The lease of a refresh key, as taken by its holder."""

    key: RefreshKey
    lease: Lease
    first_round_delay: float = 0.0  # seconds until the key's next round may start


@dataclass(frozen=True, slots=True)
class Round:
    fence: int  # guards this round's snapshot write
    target: int  # tickets issued when the round started; all covered by it
    covered: int  # how many tickets this round covers
    correlation_id: str | None  # of the latest event it covers, for the logs
    reconcile: bool = False  # only reconciliation asked for it: no one waits for it


def first_round_delay(last_round_started: datetime | None, now: datetime,
                      spacing: float) -> float:
    """Seconds to wait before a new holder's first round, so rounds stay spaced."""
    if last_round_started is None:
        return 0.0
    since = (now - last_round_started).total_seconds()
    return min(spacing, max(0.0, spacing - since))


class LeaseLost(Exception):
    """Our lease expired and someone else took it; stop writing."""


class RefreshCoordinator:
    """``monotonic`` and ``sleep`` time the spacing between a holder's rounds (injected by
    tests); MongoDB's clock times everything stored."""

    def __init__(self, states: AsyncCollection[Document], refresh: Refresh, *, owner: str,
                 lease_seconds: float, spacing: RoundSpacing | None = None,
                 sweep_interval: float = 1.0, monotonic: MonotonicClock = time.monotonic,
                 sleep: Sleep = asyncio.sleep) -> None:
        self._states = states
        self._refresh = refresh
        # The keys' leases: ``lease_owner``, ``lease_token``, ``lease_until`` of the state.
        self._leases = MongoLeases(states, owner=owner, lease_seconds=lease_seconds,
                                   prefix="lease_")
        self._spacing = spacing or RoundSpacing()
        self._sweep_interval = sweep_interval
        self._monotonic = monotonic
        self._sleep = sleep
        # Pending work whose lease is free, expired or this owner's own (stale: step 5).
        self._claimable = {**self._leases.takeable(), **PENDING_AND_DUE}
        self._draining: dict[RefreshKey, asyncio.Task[None]] = {}
        # Keys kicked while their drain here was already running (maybe finishing).
        self._kicked_again: set[RefreshKey] = set()
        self._closing = False
        self._tickets: Batcher[RefreshKey, tuple[str | None, bool], int] = Batcher(
            self._take_tickets)
        self.rounds = 0
        self.coalesced = 0

    async def request(self, key: RefreshKey, correlation_id: str | None = None, *,
                      reconcile: bool = False) -> int:
        """Record that ``key`` needs a refresh (durably) and start draining it; the ticket.

        Requests for one key that arrive while its ticket write is in flight share the
        next write (``$inc: n``); each returns once the write covering it has returned.
        ``reconcile``: asked by reconciliation, not by an event (the round may batch
        its VK read with others').
        """
        return await self._tickets.submit(key, (correlation_id, reconcile))

    async def _take_tickets(self, key: RefreshKey,
                            requests: list[tuple[str | None, bool]]) -> list[int]:
        """One write for ``n`` requests of ``key``; their tickets are the last ``n`` numbers."""
        count = len(requests)
        state = await self._states.find_one_and_update(
            {"_id": key.id},
            {"$inc": {"requested": count},
             "$set": {"correlation_id": requests[-1][0],
                      "reconcile": all(reconcile for _, reconcile in requests)},
             "$setOnInsert": {"project_id": key.project_id, "content_type": key.content.value,
                              "completed": 0, "fence": 0, "retry_at": None,
                              **self._leases.free}},
            upsert=True, return_document=ReturnDocument.AFTER)
        assert state is not None
        self.kick(key)
        last = int(state["requested"])
        return list(range(last - count + 1, last + 1))

    @property
    def ticket_writes(self) -> int:
        """How many ticket writes this process made (fewer than requests under load)."""
        return self._tickets.writes

    def kick(self, key: RefreshKey) -> None:
        """Drain ``key`` in the background unless this process is already doing so.

        If it is, the running drain may be past its last look at the tickets (releasing
        the lease): so it is drained once more when it ends, and a ticket written just
        then is taken at once instead of waiting for the sweeper.
        """
        if self._closing:
            return
        if key in self._draining:
            self._kicked_again.add(key)
            return
        task = asyncio.create_task(self._drain(key))
        self._draining[key] = task
        task.add_done_callback(lambda _: self._drained(key))

    def _drained(self, key: RefreshKey) -> None:
        del self._draining[key]
        if key in self._kicked_again:
            self._kicked_again.discard(key)
            self.kick(key)

    async def completed(self, key: RefreshKey) -> int:
        state = await self._states.find_one({"_id": key.id}, projection={"completed": 1})
        return 0 if state is None else int(state["completed"])

    async def sweep_forever(self) -> None:
        """Pick up pending work nobody is draining (its holder died, or a retry is due)."""
        while True:
            try:
                await self.sweep_once()
            except Exception as exc:  # MongoDB away, say: try again next time, visibly
                log.warning("refresh_sweep_failed", error=f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(self._sweep_interval)

    async def sweep_once(self) -> int:
        found = 0
        async for state in self._states.find(
                self._claimable, projection={"project_id": 1, "content_type": 1}):
            try:
                key = RefreshKey(str(state["project_id"]), ContentType(state["content_type"]))
            except (KeyError, ValueError) as exc:  # not ours to fix; the others go on
                log.warning("refresh_state_unusable", state_id=str(state["_id"]),
                            error=f"{type(exc).__name__}: {exc}")
                continue
            self.kick(key)
            found += 1
        return found

    async def close(self) -> None:
        """Stop draining; leases are released, pending work stays for others."""
        self._closing = True
        await cancel_and_wait(*self._draining.values())

    async def _drain(self, key: RefreshKey) -> None:
        try:
            lease = await self._try_acquire(key)
            if lease is None:
                return  # someone else drains it; they will see our ticket
            await self._run_rounds(lease)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # transient: the sweeper retries it after its backoff
            log.warning("refresh_will_retry", key=key.id, error=f"{type(exc).__name__}: {exc}")

    async def _try_acquire(self, key: RefreshKey) -> KeyLease | None:
        taken = await self._leases.take(key.id, where=PENDING_AND_DUE)
        if taken is None:
            return None
        lease, state = taken
        now = self._leases.taken_at(state)
        spacing = float(state.get("round_spacing", self._spacing.base))
        return KeyLease(key, lease,
                        first_round_delay(state.get("round_started_at"), now, spacing))

    async def _run_rounds(self, lease: KeyLease) -> None:
        heartbeat = asyncio.create_task(self._keep_alive(lease))
        try:
            delay = lease.first_round_delay
            while True:
                # Not too often: events meanwhile are covered by this round.
                await self._sleep(delay)
                current, rate = await self._start_round(lease)
                spacing = self._spacing.for_rate(rate)
                # After the stamp is written, so the next stamp is the spacing after it.
                started = self._monotonic()
                try:
                    await self._refresh(lease.key, current)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    await self._release_for_retry(lease)
                    raise
                self.rounds += 1
                self.coalesced += max(0, current.covered - 1)
                if await self._finish_round(lease, current.target, spacing, rate):
                    return
                # More events came during the round: refresh again.
                delay = max(0.0, started + spacing - self._monotonic())
        except BaseException:
            with contextlib.suppress(Exception):
                await self._leases.release(lease.lease)
            raise
        finally:
            await cancel_and_wait(heartbeat)

    async def _start_round(self, lease: KeyLease) -> tuple[Round, float]:
        """Stamp and fence a new round; the round, and the key's event rate at it."""
        state = await self._states.find_one_and_update(
            self._leases.held(lease.lease), [{"$set": {"fence": {"$add": ["$fence", 1]},
                                   "previous_round_started_at": "$round_started_at",
                                   "round_started_at": "$$NOW"}}],
            return_document=ReturnDocument.AFTER)
        if state is None:
            raise LeaseLost(lease.key.id)
        target = int(state["requested"])
        covered = target - int(state["completed"])
        previous = state.get("previous_round_started_at")
        since = None if previous is None else (
            state["round_started_at"] - previous).total_seconds()
        return Round(fence=int(state["fence"]), target=target, covered=covered,
                     correlation_id=state.get("correlation_id"),
                     reconcile=bool(state.get("reconcile"))), self._spacing.rate(
                         covered, since, float(state.get("event_rate", 0.0)))

    async def _finish_round(self, lease: KeyLease, target: int, spacing: float,
                            rate: float) -> bool:
        """Mark ``target`` completed; release the lease (True) unless new tickets came."""
        state = await self._states.find_one_and_update(
            self._leases.held(lease.lease), {"$max": {"completed": target},
                         "$set": {"retry_at": None, "failures": 0, "round_spacing": spacing,
                                  "event_rate": rate}},
            return_document=ReturnDocument.AFTER)
        if state is None:
            raise LeaseLost(lease.key.id)
        return await self._leases.release(lease.lease, where={"requested": target})

    async def _release_for_retry(self, lease: KeyLease) -> None:
        """Free the lease and set ``retry_at`` by the backoff policy for the failure count."""
        with contextlib.suppress(Exception):
            state = await self._states.find_one_and_update(
                self._leases.held(lease.lease), {"$inc": {"failures": 1}},
                return_document=ReturnDocument.AFTER)
            if state is None:
                return
            delay_ms = int(backoff_seconds(int(state["failures"])) * 1000)
            await self._leases.release(lease.lease,
                                       also_set={"retry_at": {"$add": ["$$NOW", delay_ms]}})

    async def _keep_alive(self, lease: KeyLease) -> None:
        with structlog.contextvars.bound_contextvars(key=lease.key.id):
            await self._leases.heartbeat(lease.lease)
        log.warning("refresh_lease_lost", key=lease.key.id)
        raise LeaseLost(lease.key.id)
