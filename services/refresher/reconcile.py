"""Reconciliation: every cache is refreshed at least every ``RECONCILE_INTERVAL_SECONDS``.

Callbacks are not enough: VK stops retrying after ~1 h 43 min, and sends no event when a
published post is deleted or a suggestion rejected. So each project carries when it is
next due, ``reconcile_at`` (and when it was last reconciled, ``reconciled_at``). A project
seen for the first time is due at its own point of the interval (a hash of its id), so
100,000 projects of a first deployment spread evenly over it instead of arriving as one
herd. Every tick, each refresher replica takes the projects due, oldest first, at most
its share of the interval (``projects × tick / interval``, plus one), so a backlog after
an outage is spread too. A project is taken by compare-and-set on ``reconcile_at``, so
two replicas never take it twice.

For a project taken, each cache not refreshed within the interval (``refresh_status``,
by a callback or an earlier pass) gets an ordinary ticket (:mod:`coalescing`), marked
as reconciliation: it coalesces with callback refreshes of the key, and its round reads
VK through one ``execute`` with the project's other caches and the token's other
projects (:mod:`shared.vk.page_batch`), within the token's rate limit. The project is
next due when its oldest cache turns one interval old. An unchanged wall announces
nothing (the handler's "only change is news").
"""

from __future__ import annotations

import asyncio
import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection

from services.refresher import metrics
from services.refresher.coalescing import RefreshCoordinator, RefreshKey
from shared.documents import id_label
from shared.messages import new_correlation_id
from shared.mongo import ContentType, Document

log = structlog.get_logger(__name__)

_DUE_FIELDS = {"reconcile_at": 1, "refresh_status": 1}
_SCHEDULED_PER_TICK = 1000  # new projects given their first due time per tick


@dataclass(frozen=True, slots=True)
class Plan:
    due: tuple[ContentType, ...]  # caches to refresh now
    next_at: datetime  # when the project is due again


def last_refreshed(refresh_status: Any, content: ContentType) -> datetime | None:
    """When the cache was last refreshed (any outcome), read tolerantly."""
    status = refresh_status.get(content.value) if isinstance(refresh_status, Mapping) else None
    return _as_utc(status.get("at") if isinstance(status, Mapping) else None)


def plan(refresh_status: Any, now: datetime, interval: timedelta, slack: timedelta) -> Plan:
    """Which caches of a project to refresh now, and when to look at it again.

    A cache refreshed less than an interval ago (give or take ``slack``, the reconciler's
    tick) is skipped; the project is due again when its oldest cache turns one interval old.
    """
    due: list[ContentType] = []
    next_at = now + interval
    for content in ContentType:
        at = last_refreshed(refresh_status, content)
        if at is None or at + interval <= now + slack:
            due.append(content)
        else:
            next_at = min(next_at, at + interval)
    return Plan(tuple(due), next_at)


def first_due(project_id: Any, now: datetime, interval: timedelta) -> datetime:
    """When a project seen for the first time is due: its own point of the interval."""
    digest = hashlib.sha256(str(project_id).encode()).digest()
    return now + interval * (int.from_bytes(digest[:8], "big") / 2**64)


def share(projects: int, tick: float, interval: float) -> int:
    """How many projects one tick takes at most: the interval's work spread evenly."""
    return math.ceil(projects * tick / interval) + 1


class Reconciler:
    def __init__(self, projects: AsyncCollection[Document], coordinator: RefreshCoordinator, *,
                 interval: float, tick: float = 1.0, age_every: float = 15.0) -> None:
        self._projects = projects
        self._coordinator = coordinator
        self._interval = timedelta(seconds=interval)
        self._tick = tick
        self._age_every = age_every
        self._age_measured = -math.inf

    async def run_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                await self.tick_once()
                if loop.time() - self._age_measured >= self._age_every:
                    self._age_measured = loop.time()
                    await self.measure_cache_ages()
            except Exception as exc:  # MongoDB away, say: the next tick tries again
                log.warning("reconcile_tick_failed", error=f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(self._tick)

    async def tick_once(self) -> int:
        """Schedule new projects; take this tick's share of those due; how many were taken."""
        now = datetime.now(UTC)
        async for project in self._projects.find({"reconcile_at": None}, {"_id": 1},
                                                 limit=_SCHEDULED_PER_TICK):
            await self._projects.update_one(
                {"_id": project["_id"], "reconcile_at": None},
                {"$set": {"reconcile_at": first_due(project["_id"], now, self._interval)}})
        limit = share(await self._projects.estimated_document_count(), self._tick,
                      self._interval.total_seconds())
        due = await self._projects.find(
            {"reconcile_at": {"$lte": now}}, _DUE_FIELDS,
            sort=[("reconcile_at", ASCENDING)], limit=limit).to_list()
        taken = 0
        for project in due:
            taken += await self._reconcile(project, now)
        return taken

    async def _reconcile(self, project: Document, now: datetime) -> int:
        project_plan = plan(project.get("refresh_status"), now, self._interval,
                            timedelta(seconds=self._tick))
        claimed = await self._projects.update_one(
            {"_id": project["_id"], "reconcile_at": project.get("reconcile_at")},
            {"$set": {"reconcile_at": project_plan.next_at, "reconciled_at": now}})
        if claimed.modified_count == 0:
            return 0  # another replica took it meanwhile
        skipped = len(ContentType) - len(project_plan.due)
        metrics.RECONCILED.labels(outcome="skipped_recent").inc(skipped)
        if project_plan.due:
            project_id = id_label(project["_id"])
            correlation_id = new_correlation_id()
            await asyncio.gather(*(
                self._coordinator.request(RefreshKey(project_id, content), correlation_id,
                                          reconcile=True)
                for content in project_plan.due))
            metrics.RECONCILED.labels(outcome="requested").inc(len(project_plan.due))
            log.info("project_reconciling", project_id=project_id, correlation_id=correlation_id,
                     content_types=[content.value for content in project_plan.due])
        return 1

    async def measure_cache_ages(self) -> dict[ContentType, float | None]:
        """Age of the oldest cache per content type (any outcome), into the gauge."""
        cursor = await self._projects.aggregate([{"$group": {
            "_id": None, **{content.value: {"$min": f"$refresh_status.{content.value}.at"}
                            for content in ContentType}}}])
        oldest = await cursor.to_list()
        now = datetime.now(UTC)
        ages: dict[ContentType, float | None] = {}
        for content in ContentType:
            at = _as_utc(oldest[0].get(content.value)) if oldest else None
            age = None if at is None else max(0.0, (now - at).total_seconds())
            ages[content] = age
            metrics.OLDEST_CACHE_AGE.labels(content_type=content.value).set(age or 0.0)
        return ages


def _as_utc(value: Any) -> datetime | None:
    """A stored time as an aware UTC datetime (naive ones are UTC, as MongoDB stores)."""
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
