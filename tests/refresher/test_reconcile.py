"""Reconciliation's decisions (pure) and its passes over real MongoDB."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from services.refresher.coalescing import RefreshCoordinator, RefreshKey, Round
from services.refresher.reconcile import Reconciler, first_due, plan, share
from shared.mongo import PROJECTS, REFRESH_STATE, ContentType, Document
from tests.support.documents import insert_project

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
INTERVAL = timedelta(minutes=15)
SLACK = timedelta(seconds=1)
SCHEDULED, PUBLISHED, SUGGESTED = ContentType.SCHEDULED, ContentType.PUBLISHED, ContentType.SUGGESTED


def status(now: datetime = NOW, **ages: float) -> dict[str, Any]:
    """``refresh_status`` with each named content type refreshed ``age`` seconds ago."""
    return {content: {"ok": True, "error": None, "at": now - timedelta(seconds=age)}
            for content, age in ages.items()}


class TestPlan:
    @pytest.mark.parametrize(("refresh_status", "due", "next_in"), [
        (None, (SCHEDULED, PUBLISHED, SUGGESTED), INTERVAL),  # never refreshed
        ("garbage", (SCHEDULED, PUBLISHED, SUGGESTED), INTERVAL),  # unusable: refresh all
        (status(scheduled=900, published=900, suggested=900), (SCHEDULED, PUBLISHED, SUGGESTED),
         INTERVAL),
        (status(scheduled=899.5, published=1000, suggested=2000),
         (SCHEDULED, PUBLISHED, SUGGESTED), INTERVAL),  # within the tick's slack
        (status(scheduled=60, published=1000, suggested=300), (PUBLISHED,),
         timedelta(seconds=600)),  # the others were refreshed recently anyway
        (status(scheduled=60, published=120, suggested=30), (), timedelta(seconds=780)),
        ({"published": {"ok": False, "at": "yesterday"}}, (SCHEDULED, PUBLISHED, SUGGESTED),
         INTERVAL),
    ])
    def test_due_caches_and_next_visit(self, refresh_status: Any, due: tuple[ContentType, ...],
                                       next_in: timedelta) -> None:
        """Caches older than the interval are due; the project is due again when its
        oldest remaining cache turns one interval old."""
        result = plan(refresh_status, NOW, INTERVAL, SLACK)
        assert (result.due, result.next_at - NOW) == (due, next_in)

    def test_a_naive_time_is_read_as_utc(self) -> None:
        """Documents written by others may hold naive datetimes: they are UTC."""
        naive = {"published": {"at": (NOW - timedelta(seconds=60)).replace(tzinfo=None)}}
        assert PUBLISHED not in plan(naive, NOW, INTERVAL, SLACK).due


class TestSpreading:
    def test_first_due_times_spread_over_the_interval(self) -> None:
        """1000 new projects: first due times fill the interval evenly (each tenth ~100)."""
        offsets = [(first_due(f"project-{n}", NOW, INTERVAL) - NOW) / INTERVAL
                   for n in range(1000)]
        assert all(0 <= offset < 1 for offset in offsets)
        tenths = [sum(1 for offset in offsets if k / 10 <= offset < (k + 1) / 10)
                  for k in range(10)]
        assert min(tenths) >= 70 and max(tenths) <= 130, tenths
        assert first_due("project-1", NOW, INTERVAL) == first_due("project-1", NOW, INTERVAL)

    @pytest.mark.parametrize(("projects", "tick", "interval", "expected"), [
        (100_000, 1.0, 900.0, 113),
        (10, 1.0, 900.0, 2),
        (0, 1.0, 900.0, 1),
        (200, 0.5, 5.0, 21),
    ])
    def test_share_per_tick(self, projects: int, tick: float, interval: float,
                            expected: int) -> None:
        """A tick takes its part of the interval's work, plus one."""
        assert share(projects, tick, interval) == expected


class NoRefresh:
    async def __call__(self, key: RefreshKey, refresh_round: Round) -> None:
        return None


class TestReconciler:
    async def test_a_pass_tickets_due_caches_once_across_replicas(
            self, db: AsyncDatabase[Document]) -> None:
        """Two replicas tick over the same projects: each due cache gets exactly one
        reconciliation ticket; a cache refreshed recently gets none; the project records
        when it was reconciled and when it is due next."""
        now = datetime.now(UTC)
        recent = await insert_project(db, group_id=1, refresh_status=status(
            now, scheduled=10, published=10, suggested=10))
        stale = await insert_project(db, group_id=2, refresh_status=status(
            now, scheduled=5000, published=10, suggested=5000))
        await db[PROJECTS].update_many({}, {"$set": {"reconcile_at": now - INTERVAL}})
        coordinators = [RefreshCoordinator(db[REFRESH_STATE], NoRefresh(), owner=owner,
                                           lease_seconds=5) for owner in "ab"]
        replicas = [Reconciler(db[PROJECTS], coordinator, interval=INTERVAL.total_seconds())
                    for coordinator in coordinators]
        try:
            taken = [await replica.tick_once() for replica in replicas]
        finally:
            for coordinator in coordinators:
                await coordinator.close()
        assert sorted(taken) == [0, 2]  # the first replica took both, the second none
        states = {state["_id"]: state async for state in db[REFRESH_STATE].find({})}
        assert set(states) == {f"{stale}:scheduled", f"{stale}:suggested"}
        assert all(state["requested"] == 1 and state["reconcile"] for state in states.values())
        projects = {p["_id"]: p async for p in db[PROJECTS].find({})}
        assert all(isinstance(p["reconciled_at"], datetime) for p in projects.values())
        # The recent one is next due when its caches turn 15 min old; the stale one when
        # its published cache (10 s old) does.
        for project_id in (recent, stale):
            due_in = (projects[project_id]["reconcile_at"] - now).total_seconds()
            assert due_in == pytest.approx(890, abs=0.01), project_id

    async def test_new_projects_are_scheduled_within_the_interval(
            self, db: AsyncDatabase[Document]) -> None:
        """A project without ``reconcile_at`` gets its first due time in the interval,
        nothing is refreshed at once (no herd at start)."""
        for group_id in range(1, 21):
            await insert_project(db, group_id=group_id)
        coordinator = RefreshCoordinator(db[REFRESH_STATE], NoRefresh(), owner="a",
                                         lease_seconds=5)
        reconciler = Reconciler(db[PROJECTS], coordinator, interval=3600.0)
        try:
            before = datetime.now(UTC)
            taken = await reconciler.tick_once()
        finally:
            await coordinator.close()
        due = [p["reconcile_at"] async for p in db[PROJECTS].find({})]
        assert len(due) == 20 and all(before <= at <= before + timedelta(hours=1, seconds=5)
                                      for at in due)
        assert taken == sum(1 for at in due if at <= datetime.now(UTC))
        assert taken <= 2  # the share: 20 × 1 s / 3600 s, plus one

    async def test_oldest_cache_age_per_content_type(self, db: AsyncDatabase[Document]) -> None:
        """The gauge's value: the least recently refreshed cache of each type."""
        await insert_project(db, group_id=1, refresh_status={
            "published": {"ok": True, "at": datetime.now(UTC) - timedelta(seconds=100)}})
        await insert_project(db, group_id=2, refresh_status={
            "published": {"ok": True, "at": datetime.now(UTC) - timedelta(seconds=400)},
            "scheduled": {"ok": False, "at": datetime.now(UTC) - timedelta(seconds=50)}})
        coordinator = RefreshCoordinator(db[REFRESH_STATE], NoRefresh(), owner="a",
                                         lease_seconds=5)
        ages = await Reconciler(db[PROJECTS], coordinator, interval=900.0).measure_cache_ages()
        await coordinator.close()
        assert ages[SUGGESTED] is None
        assert ages[PUBLISHED] == pytest.approx(400, abs=5)
        assert ages[SCHEDULED] == pytest.approx(50, abs=5)
