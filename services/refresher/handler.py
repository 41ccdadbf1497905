"""The refresher's message handler: a callback event in, fresh caches and an announcement out."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import structlog
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from services.refresher import metrics
from services.refresher.coalescing import RefreshCoordinator, RefreshKey, Round
from services.refresher.content import content_types_for
from services.refresher.dedup import EventLedger
from services.refresher.snapshot import StaleSnapshot, replace_snapshot
from shared.broker import Broker
from shared.documents import DocumentError, Project
from shared.messages import CallbackEvent, ProjectUpdated, new_correlation_id
from shared.mongo import PROCESSED_EVENTS, PROJECTS, ContentType, Document
from shared.vk import VkClient, VkPermanentError, VkTransientError, WallFilter, WallPost

log = structlog.get_logger(__name__)


class RefreshHandler:
    """Plain async callable: ``await handler(event)``; raising means "retry later".

    An event is done once its refresh tickets are durable in MongoDB; the refresh
    itself runs in the coordinator's background drain (see ``coalescing.py``).
    """

    def __init__(self, db: AsyncDatabase[Document], coordinator: RefreshCoordinator) -> None:
        self._db = db
        self._coordinator = coordinator
        self._ledger = EventLedger(db[PROCESSED_EVENTS])

    async def __call__(self, event: CallbackEvent) -> None:
        contents = content_types_for(event.type, event.object)
        bound = log.bind(project_id=event.project_id, event_type=event.type,
                         event_id=event.event_id)
        if not contents:
            metrics.EVENTS.labels(outcome="ignored").inc()
            bound.debug("event_ignored")
            return
        if not await self._ledger.claim(event):
            metrics.EVENTS.labels(outcome="duplicate").inc()
            bound.info("duplicate_event_dropped")
            return
        # The gateway found the project a moment ago; the refresh itself checks again.
        await asyncio.gather(*(
            self._coordinator.request(RefreshKey(event.project_id, content), event.correlation_id)
            for content in sorted(contents)))
        metrics.EVENTS.labels(outcome="queued").inc()
        bound.info("refresh_requested", content_types=sorted(c.value for c in contents))


class Refresher:
    """Runs one full refresh of a (project, content type) from VK into MongoDB."""

    def __init__(self, client: AsyncMongoClient[Document], db: AsyncDatabase[Document],
                 vk: VkClient, broker: Broker, published_limit: int) -> None:
        self._client = client
        self._db = db
        self._vk = vk
        self._broker = broker
        self._published_limit = published_limit

    async def __call__(self, key: RefreshKey, refresh_round: Round) -> None:
        # The round carries the correlation id of the latest event it covers, so the
        # log lines of a callback lead from the gateway to this refresh and onwards.
        correlation_id = refresh_round.correlation_id or new_correlation_id()
        with structlog.contextvars.bound_contextvars(correlation_id=correlation_id):
            document = await self._db[PROJECTS].find_one({"_id": key.project_id})
            if document is None:
                log.warning("refresh_for_unknown_project", project_id=key.project_id)
                return
            try:
                project = Project.from_document(document)
            except DocumentError as exc:
                log.warning("refresh_for_unusable_project", project_id=key.project_id,
                            error=str(exc))
                return
            if project.group_id == 0:
                log.warning("refresh_for_unusable_project", project_id=key.project_id,
                            error=project.problem)
                return
            await self._refresh(project, key.content, refresh_round.fence,
                                correlation_id=correlation_id)

    async def _refresh(self, project: Project, content: ContentType, fence: int, *,
                       correlation_id: str) -> None:
        """One full refresh; permanent VK failures are recorded on the project, not retried."""
        started = time.perf_counter()
        bound = log.bind(project_id=project.label, content_type=content.value, fence=fence)
        try:
            posts = await self._fetch(project, content)
        except VkTransientError as exc:
            # Still failing after the client's own retries: visible now, retried later.
            await self._record(project, content, error=f"{exc} (will retry)")
            metrics.REFRESHES.labels(content_type=content.value, outcome="retry").inc()
            metrics.PROJECT_REFRESH_FAILURES.labels(project_id=project.id, kind="transient").inc()
            raise
        except VkPermanentError as exc:
            await self._record(project, content, error=str(exc))
            metrics.REFRESHES.labels(content_type=content.value, outcome="failed").inc()
            metrics.PROJECT_REFRESH_FAILURES.labels(project_id=project.id, kind="permanent").inc()
            bound.warning("refresh_failed", error=str(exc), code=exc.code)
            await self._announce(project, content, correlation_id, "refresh_failed")
            return
        fetched_at = datetime.now(UTC)
        try:
            async with self._client.start_session() as session:
                await replace_snapshot(self._db, session, project.label, content, posts, fence,
                                       fetched_at)
        except StaleSnapshot:
            metrics.REFRESHES.labels(content_type=content.value, outcome="stale").inc()
            bound.info("refresh_superseded")
            return
        await self._record(project, content, error=None)
        elapsed = time.perf_counter() - started
        metrics.REFRESHES.labels(content_type=content.value, outcome="ok").inc()
        metrics.REFRESH_SECONDS.labels(content_type=content.value).observe(elapsed)
        bound.info("refresh_done", posts=len(posts), seconds=round(elapsed, 3))
        await self._announce(project, content, correlation_id, "refresh")

    async def _fetch(self, project: Project, content: ContentType) -> list[WallPost]:
        owner_id = -project.group_id
        if content is ContentType.SCHEDULED:
            return await self._vk.wall_get_all(project.token, owner_id, WallFilter.POSTPONED)
        if content is ContentType.SUGGESTED:
            return await self._vk.wall_get_all(project.token, owner_id, WallFilter.SUGGESTS)
        return await self._vk.wall_get_all(project.token, owner_id, WallFilter.ALL,
                                           limit=self._published_limit)

    async def _record(self, project: Project, content: ContentType, *, error: str | None) -> None:
        """Keep the last outcome per content type on the project, for users and operators."""
        await self._db[PROJECTS].update_one({"_id": project.id}, {"$set": {
            f"refresh_status.{content.value}": {
                "ok": error is None, "error": error, "at": datetime.now(UTC)},
        }})

    async def _announce(self, project: Project, content: ContentType, correlation_id: str,
                        reason: str) -> None:
        await self._broker.publish_update(ProjectUpdated(
            project_id=project.label, content_types=(content,), reason=reason,
            correlation_id=correlation_id))
        log.info("project_update_announced", project_id=project.label,
                 content_type=content.value,
                 reason=reason)
