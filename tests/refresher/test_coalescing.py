from __future__ import annotations

import asyncio
import itertools
import math
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure
from structlog.testing import capture_logs

from services.refresher.coalescing import (
    RefreshCoordinator,
    RefreshKey,
    Round,
    first_round_delay,
)
from services.refresher.spacing import RoundSpacing
from shared.mongo import REFRESH_STATE, ContentType, Document, connect
from shared.settings import Settings
from tests.support.background import in_background
from tests.support.manual_clock import ManualClock
from tests.support.waiting import eventually

KEY = RefreshKey("p", ContentType.PUBLISHED)


class RecordingRefresh:
    """A refresh that records each run, its fence, and how many ran at once."""

    def __init__(self, duration: float = 0.05, failures: int = 0) -> None:
        self.duration = duration
        self.failures = failures
        self.fences: list[int] = []
        self.started: list[float] = []  # event-loop time of each run's start
        self.running = 0
        self.max_parallel = 0
        self.gate: asyncio.Event | None = None

    @property
    def runs(self) -> int:
        return len(self.fences)

    async def __call__(self, key: RefreshKey, refresh_round: Round) -> None:
        fence = refresh_round.fence
        self.started.append(asyncio.get_running_loop().time())
        self.running += 1
        self.max_parallel = max(self.max_parallel, self.running)
        try:
            if self.gate is not None:
                await self.gate.wait()
            await asyncio.sleep(self.duration)
            if self.failures:
                self.failures -= 1
                raise ConnectionError("VK unreachable")
            self.fences.append(fence)
        finally:
            self.running -= 1


class RoundClock(ManualClock):
    """The clock of the waits between a holder's rounds: moves when the test moves it, and
    records every wait asked for (0: the round starts at once)."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        if seconds <= 0:
            await asyncio.sleep(0)  # as asyncio.sleep(0): no time passes
            return
        await super().sleep(seconds)


async def holder_waits(clock: RoundClock) -> float:
    """Once the holder waits for its next round: how long it asked to wait."""
    await eventually(lambda: clock.sleeping == 1, what="the holder waiting")
    return clock.waits[-1]


Factory = Callable[..., RefreshCoordinator]


@pytest.fixture
async def make(db: AsyncDatabase[Document]) -> AsyncIterator[Factory]:
    made: list[RefreshCoordinator] = []

    def factory(refresh: RecordingRefresh, owner: str = "a", lease: float = 5,
                interval: float = 0.0, spacing: RoundSpacing | None = None,
                coordinator_class: type[RefreshCoordinator] = RefreshCoordinator,
                clock: RoundClock | None = None) -> RefreshCoordinator:
        # ``interval``: a fixed spacing, as with no stretch for busy keys.
        timing: dict[str, Any] = {} if clock is None else {"monotonic": clock,
                                                          "sleep": clock.sleep}
        coordinator = coordinator_class(
            db[REFRESH_STATE], refresh, owner=owner, lease_seconds=lease,
            spacing=spacing or RoundSpacing(base=interval, per_event=0.0, maximum=interval),
            sweep_interval=0.05, **timing)
        made.append(coordinator)
        return coordinator

    yield factory
    for coordinator in made:
        await coordinator.close()


async def settled(coordinator: RefreshCoordinator, ticket: int, key: RefreshKey = KEY) -> None:
    async def covered() -> bool:
        return await coordinator.completed(key) >= ticket
    await eventually(covered, what=f"ticket {ticket} completed")


class TestRefreshCoordinator:
    async def test_single_request_refreshes_once(self, make: Factory) -> None:
        """One event, one refresh."""
        refresh = RecordingRefresh()
        coordinator = make(refresh)
        await settled(coordinator, await coordinator.request(KEY))
        assert refresh.runs == 1

    async def test_burst_is_coalesced_across_replicas(self, make: Factory) -> None:
        """200 events on two 'replicas' during refreshes cost a handful of runs, never parallel."""
        refresh = RecordingRefresh(duration=0.05)
        replicas = [make(refresh, "a"), make(refresh, "b")]
        tickets = await asyncio.gather(*(replicas[i % 2].request(KEY) for i in range(200)))
        await settled(replicas[0], max(tickets))
        assert 1 <= refresh.runs <= 5
        assert refresh.max_parallel == 1
        assert refresh.fences == sorted(refresh.fences)
        assert len(set(refresh.fences)) == refresh.runs

    async def test_event_during_refresh_gets_another_round(self, make: Factory,
                                                           db: AsyncDatabase[Document]) -> None:
        """An event arriving while a refresh runs is covered by a later round, not lost."""
        refresh = RecordingRefresh()
        refresh.gate = asyncio.Event()
        first, second = make(refresh, "a"), make(refresh, "b")
        await first.request(KEY)
        await eventually(lambda: refresh.running == 1, what="first round running")
        ticket = await second.request(KEY)
        refresh.gate.set()
        await settled(first, ticket)
        assert refresh.runs == 2

    async def test_fixed_spacing_spaces_rounds(self, make: Factory) -> None:
        """With a fixed spacing, a steady stream of events costs one round per spacing: the
        holder waits the spacing after each round, and the next covers every event since."""
        clock = RoundClock()
        events_in_rounds = 3  # an event arrives during each of the first three rounds
        ticket = 0

        class SteadyStream(RecordingRefresh):
            async def __call__(self, key: RefreshKey, refresh_round: Round) -> None:
                nonlocal events_in_rounds, ticket
                if events_in_rounds:
                    events_in_rounds -= 1
                    ticket = await coordinator.request(KEY)
                await super().__call__(key, refresh_round)

        refresh = SteadyStream(duration=0.01)
        coordinator = make(refresh, interval=0.3, clock=clock)
        ticket = await coordinator.request(KEY)
        for spacing in range(1, 4):
            assert await holder_waits(clock) == pytest.approx(0.3)
            for _ in range(5):  # events while the holder waits
                ticket = await coordinator.request(KEY)
            assert refresh.runs == spacing
            clock.advance_to_next_wakeup()
        await settled(coordinator, ticket)
        assert refresh.runs == 4  # 19 events: the first round, then one per spacing
        assert clock.waits == [0.0, pytest.approx(0.3), pytest.approx(0.3), pytest.approx(0.3)]

    async def test_rounds_stay_spaced_when_the_lease_is_released_between_events(
            self, make: Factory, db: AsyncDatabase[Document]) -> None:
        """Events a little apart, each after the previous round ended and let the lease go,
        on two replicas in turn: each round starts (by its ``round_started_at`` stamp,
        MongoDB's clock) at least an interval after the one before, not one per event."""
        stamps: list[datetime] = []

        class StampRecordingRefresh(RecordingRefresh):
            async def __call__(self, key: RefreshKey, refresh_round: Round) -> None:
                state = await db[REFRESH_STATE].find_one({"_id": key.id})
                assert state is not None
                stamps.append(state["round_started_at"])  # this round's: we hold the lease
                await super().__call__(key, refresh_round)

        refresh = StampRecordingRefresh(duration=0.01)
        replicas = [make(refresh, "a", interval=0.3), make(refresh, "b", interval=0.3)]
        ticket = 0
        for index in range(12):
            ticket = await replicas[index % 2].request(KEY)
            await asyncio.sleep(0.1)
        await settled(replicas[0], ticket)
        gaps = [(later - earlier).total_seconds() for earlier, later in itertools.pairwise(stamps)]
        assert len(stamps) == refresh.runs >= 2
        assert min(gaps) >= 0.3 - 0.001, gaps  # stamps are stored to the millisecond

    async def test_dead_holder_is_replaced_by_the_sweeper(self, make: Factory,
                                                          db: AsyncDatabase[Document]) -> None:
        """Work whose lease holder vanished is picked up once the lease expires."""
        await db[REFRESH_STATE].insert_one({
            "_id": KEY.id, "project_id": KEY.project_id, "content_type": KEY.content.value,
            "requested": 3, "completed": 1, "fence": 7, "retry_at": None,
            "lease_owner": "crashed", "lease_token": "x"})
        await db[REFRESH_STATE].update_one({"_id": KEY.id}, [{"$set": {
            "lease_until": {"$add": ["$$NOW", 300]}}}])
        refresh = RecordingRefresh()
        coordinator = make(refresh, "alive")
        sweeper = asyncio.create_task(coordinator.sweep_forever())
        try:
            await settled(coordinator, 3)
        finally:
            sweeper.cancel()
        assert refresh.fences == [8]

    async def test_own_stale_lease_is_taken_again_at_once(self, make: Factory,
                                                          db: AsyncDatabase[Document]) -> None:
        """A lease marked with this process's own owner that no task of it drains (a
        release that failed while MongoDB had no primary; a restart with the same
        host:pid) is taken again by the sweeper long before it would expire."""
        await db[REFRESH_STATE].insert_one({
            "_id": KEY.id, "project_id": KEY.project_id, "content_type": KEY.content.value,
            "requested": 2, "completed": 1, "fence": 3, "retry_at": None,
            "lease_owner": "alive", "lease_token": "stale"})
        await db[REFRESH_STATE].update_one({"_id": KEY.id}, [{"$set": {
            "lease_until": {"$add": ["$$NOW", 300_000]}}}])  # 5 minutes: far beyond the wait
        refresh = RecordingRefresh()
        coordinator = make(refresh, "alive")
        other = make(RecordingRefresh(), "other")
        assert await other.sweep_once() == 0  # for everyone else the lease is held
        sweeper = asyncio.create_task(coordinator.sweep_forever())
        try:
            await settled(coordinator, 2)
        finally:
            sweeper.cancel()
        assert refresh.fences == [4]

    async def test_heartbeat_keeps_a_slow_holder(self, make: Factory,
                                                 db: AsyncDatabase[Document]) -> None:
        """A refresh lasting several leases keeps its lease (renewed every third of it):
        another replica's sweeper never takes the key meanwhile."""
        refresh = RecordingRefresh()
        refresh.gate = asyncio.Event()
        holder = make(refresh, "slow", lease=0.6)
        other = make(RecordingRefresh(), "other", lease=0.6)
        await holder.request(KEY)
        await eventually(lambda: refresh.running == 1, what="round running")
        renewals = set()

        async def renewed_three_times() -> bool:
            assert await other.sweep_once() == 0
            state = await db[REFRESH_STATE].find_one({"_id": KEY.id})
            assert state is not None and state["lease_owner"] == "slow"
            renewals.add(state["lease_until"])
            return len(renewals) >= 4

        await eventually(renewed_three_times, timeout=10, interval=0.05,
                         what="the lease renewed three times")
        refresh.gate.set()
        await settled(holder, 1)
        assert refresh.runs == 1

    async def test_transient_failure_is_retried_after_backoff(self, make: Factory,
                                                              db: AsyncDatabase[Document]) -> None:
        """A failed refresh frees the lease, stays pending with retry_at, and is retried."""
        refresh = RecordingRefresh(failures=1)
        coordinator = make(refresh)
        ticket = await coordinator.request(KEY)

        async def failed_once() -> bool:
            state = await db[REFRESH_STATE].find_one({"_id": KEY.id})
            return state is not None and state.get("failures") == 1 and state["lease_owner"] is None

        await eventually(failed_once, what="the first failure recorded")
        sweeper = asyncio.create_task(coordinator.sweep_forever())
        try:
            await settled(coordinator, ticket)
        finally:
            sweeper.cancel()
        state = await db[REFRESH_STATE].find_one({"_id": KEY.id})
        assert state is not None and state["failures"] == 0
        assert refresh.runs == 1


    async def test_a_ticket_written_while_the_holder_finishes_is_taken_at_once(
            self, make: Factory) -> None:
        """A ticket stored right after the holder let the lease go, while its drain is still
        ending in this process, is refreshed without a sweeper (none runs here)."""
        late: list[int] = []

        class RaceAtRelease(RefreshCoordinator):
            async def _finish_round(self, lease: Any, target: int, spacing: float,
                                    rate: float) -> bool:
                released = await super()._finish_round(lease, target, spacing, rate)
                if released and not late:
                    late.append(await self.request(KEY))  # the drain has not ended yet
                return released

        refresh = RecordingRefresh(duration=0.01)
        coordinator = make(refresh, coordinator_class=RaceAtRelease)
        await settled(coordinator, await coordinator.request(KEY))
        await eventually(lambda: bool(late), what="the late ticket taken")
        await settled(coordinator, late[0])
        assert refresh.runs == 2

    async def test_the_sweeper_logs_every_failure_it_survives(self, settings: Settings) -> None:
        """MongoDB unusable for the sweeper: each failed sweep is logged, and it keeps going."""
        closed: AsyncMongoClient[Document] = connect(settings, "tests")
        await closed.close()
        coordinator = RefreshCoordinator(closed[settings.mongo_db][REFRESH_STATE],
                                         RecordingRefresh(),
                                         owner="a", lease_seconds=5, sweep_interval=0.01)
        with capture_logs() as logs:
            async with in_background(coordinator.sweep_forever()) as sweeper:
                await eventually(lambda: sum(
                    entry["event"] == "refresh_sweep_failed" for entry in logs) >= 3,
                    what="three failed sweeps logged")
                assert not sweeper.done()
        failure = next(entry for entry in logs if entry["event"] == "refresh_sweep_failed")
        assert failure["log_level"] == "warning" and "InvalidOperation" in failure["error"]

    async def test_an_unusable_state_document_does_not_stop_the_sweep(
            self, make: Factory, db: AsyncDatabase[Document]) -> None:
        """Pending work of an unknown content type is logged and skipped; the rest is swept."""
        for state_id, content in (("x:videos", "videos"), (KEY.id, KEY.content.value)):
            await db[REFRESH_STATE].insert_one({
                "_id": state_id, "project_id": "x", "content_type": content, "requested": 1,
                "completed": 0, "fence": 0, "retry_at": None, "lease_owner": None})
        refresh = RecordingRefresh()
        coordinator = make(refresh)
        with capture_logs() as logs:
            assert await coordinator.sweep_once() == 1
        assert [entry["state_id"] for entry in logs
                if entry["event"] == "refresh_state_unusable"] == ["x:videos"]

    async def test_a_busy_key_stretches_its_spacing_and_a_quiet_one_is_immediate(
            self, make: Factory, db: AsyncDatabase[Document]) -> None:
        """100 events/s for 1.5 s (of the holder's clock): the waits between rounds stretch to
        the maximum (0.6 s), so the events cost far fewer rounds than one per base spacing
        (0.1 s); then, after a quiet spell, an event's round starts at once, and the stored
        spacing is back near the base."""
        clock = RoundClock()
        ticket = 0

        class BusyStream(RecordingRefresh):  # and an event arrives during each round
            async def __call__(self, key: RefreshKey, refresh_round: Round) -> None:
                nonlocal ticket
                if clock.now < 1.5:
                    ticket = await coordinator.request(KEY)
                await super().__call__(key, refresh_round)

        refresh = BusyStream(duration=0.01)
        coordinator = make(refresh, spacing=RoundSpacing(base=0.1, per_event=0.01, maximum=0.6,
                                                         memory=0.2), clock=clock)
        ticket = await coordinator.request(KEY)
        while clock.now < 1.5:
            events = round(await holder_waits(clock) * 100)  # arriving while it waits
            tickets = await asyncio.gather(*(coordinator.request(KEY) for _ in range(events)))
            ticket = max(ticket, *tickets)
            clock.advance_to_next_wakeup()
        await settled(coordinator, ticket)
        busy_runs = refresh.runs
        assert 2 <= busy_runs <= 6, clock.waits  # one per 0.1 s would be 15
        assert max(clock.waits) == pytest.approx(0.6), clock.waits
        # Quiet, by MongoDB's clock (it stamps the rounds): longer than any spacing, and
        # long enough for the busy rate's memory (0.2 s) to fade.
        await asyncio.sleep(1.2)
        quiet_from = len(clock.waits)
        await settled(coordinator, await coordinator.request(KEY))
        assert clock.waits[quiet_from:] == [0.0]  # its round started at once
        state = await db[REFRESH_STATE].find_one({"_id": KEY.id})
        # ~1 event in 1.2 s, and the busy rate's memory has faded.
        assert state is not None and 0.1 <= state["round_spacing"] < 0.2


class TestRoundSpacing:
    SPACING = RoundSpacing(base=0.3, per_event=0.012, maximum=2.0, memory=1.0)

    @pytest.mark.parametrize(("covered", "since", "remembered", "expected"), [
        (1, None, 0.0, 0.3),  # a key's first round: no rate yet
        (1, 600.0, 50.0, 0.30002),  # quiet for 10 minutes: 1/600 event/s, memory faded
        (0, 0.5, 0.0, 0.3),  # nothing covered (a retry)
        (10, 0.5, 0.0, 0.54),  # 20 events/s: the freshness benchmark's key
        (25, 0.5, 0.0, 0.9),  # 50 events/s: the burst benchmark's key
        (2, 0.5, 50.0, 0.3 + 0.012 * 50 * math.exp(-0.5)),  # a burst's stragglers: remembered
        (50, 0.1, 0.0, 2.0),  # faster than the base spacing: measured over the base, capped
        (1000, 1.0, 0.0, 2.0),  # a flood: the maximum
    ])
    def test_spacing_grows_with_the_rate_of_events(self, covered: int, since: float | None,
                                                   remembered: float, expected: float) -> None:
        """base + per_event × max(tickets covered / seconds since the previous round,
        the remembered rate faded by exp(-since / memory)), capped."""
        assert self.SPACING.after(covered, since, remembered) == pytest.approx(expected)

    def test_no_stretch_is_a_fixed_spacing(self) -> None:
        """per_event 0: the old fixed minimum interval."""
        assert RoundSpacing(0.5, 0.0, 0.5).after(500, 0.5, 100.0) == 0.5


class TestTicketBatching:
    async def test_concurrent_requests_share_writes_and_each_ticket_is_durable(
        self, make: Factory, db: AsyncDatabase[Document]
    ) -> None:
        """100 requests for one key take fewer writes; each returns after its ticket is stored."""
        refresh = RecordingRefresh()
        coordinator = make(refresh)

        async def request_and_check(n: int) -> int:
            ticket = await coordinator.request(KEY, f"corr-{n}")
            state = await db[REFRESH_STATE].find_one({"_id": KEY.id})
            assert state is not None and state["requested"] >= ticket  # durable on return
            return ticket

        tickets = await asyncio.gather(*(request_and_check(n) for n in range(100)))
        assert sorted(tickets) == list(range(1, 101))
        assert 1 <= coordinator.ticket_writes < 100
        await settled(coordinator, 100)
        assert 1 <= refresh.runs <= 3

    async def test_keys_are_batched_separately_and_counted_exactly(
        self, make: Factory, db: AsyncDatabase[Document]
    ) -> None:
        """Interleaved requests for three keys: each key's `requested` is exactly its requests."""
        coordinator = make(RecordingRefresh())
        keys = [RefreshKey("p", content) for content in ContentType]
        for _ in range(5):  # several waves of requests at once
            await asyncio.gather(*(coordinator.request(keys[n % 3]) for n in range(30)))
        assert coordinator.ticket_writes < 150
        for key in keys:
            state = await db[REFRESH_STATE].find_one({"_id": key.id})
            assert state is not None and state["requested"] == 50

    async def test_a_failed_ticket_write_fails_every_waiter(
        self, make: Factory, db: AsyncDatabase[Document]
    ) -> None:
        """MongoDB refusing the batched `$inc` reaches every request (their messages are retried)."""
        await db[REFRESH_STATE].insert_one({"_id": KEY.id, "requested": "not a number"})
        coordinator = make(RecordingRefresh())
        outcomes = await asyncio.gather(*(coordinator.request(KEY) for _ in range(30)),
                                        return_exceptions=True)
        assert all(isinstance(outcome, OperationFailure) for outcome in outcomes)
        assert coordinator.ticket_writes < 30
        await db[REFRESH_STATE].update_one({"_id": KEY.id}, {"$set": {"requested": 0}})
        assert await coordinator.request(KEY) == 1  # the next write is a fresh one


class TestFirstRoundDelay:
    NOW = datetime(2026, 11, 27, 12, 0, 0)

    def test_a_key_never_refreshed_starts_at_once(self) -> None:
        """No previous round: no wait."""
        assert first_round_delay(None, self.NOW, 0.5) == 0.0

    def test_a_recent_round_makes_the_next_wait_for_the_rest_of_the_interval(self) -> None:
        """A round 0.2 s ago with a 0.5-s interval: wait 0.3 s."""
        last = self.NOW - timedelta(seconds=0.2)
        assert first_round_delay(last, self.NOW, 0.5) == pytest.approx(0.3)

    def test_an_old_round_does_not_delay(self) -> None:
        """A round longer ago than the interval: no wait."""
        assert first_round_delay(self.NOW - timedelta(seconds=5), self.NOW, 0.5) == 0.0

    def test_a_round_stamped_in_the_future_waits_at_most_one_interval(self) -> None:
        """Clock skew between a stamp and now never makes a key wait longer than the interval."""
        assert first_round_delay(self.NOW + timedelta(seconds=9), self.NOW, 0.5) == 0.5
