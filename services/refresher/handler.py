"""The refresher's message handler: a callback event in, fresh caches and an announcement out."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import structlog
from pymongo import AsyncMongoClient, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

from services.refresher import metrics
from services.refresher.coalescing import RefreshCoordinator, RefreshKey, Round
from services.refresher.content import content_types_for
from services.refresher.dedup import EventLedger
from services.refresher.snapshot import StaleSnapshot, replace_snapshot
from services.refresher.token_rest import TokenRest, rests_token
from shared.broker import Broker
from shared.documents import DocumentError, Project, ids_labelled
from shared.messages import CallbackEvent, ProjectUpdated, UpdateReason, new_correlation_id
from shared.mongo import PROCESSED_EVENTS, PROJECTS, ContentType, Document
from shared.vk import (
    VkClient,
    VkError,
    VkPermanentError,
    VkTransientError,
    WallFilter,
    WallPost,
    token_fingerprint,
)
from shared.vk.client import WALL_GET_MAX_COUNT
from shared.vk.page_batch import WallPageBatcher

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
    """Runs one full refresh of a (project, content type) from VK into MongoDB.

    Only change is news: a refresh is announced only if it wrote or deleted cached posts,
    or changed the outcome in ``refresh_status`` (ok to an error, one error to another,
    back to ok); its timestamp alone does not count, so a reconciliation pass over
    unchanged walls announces nothing.
    """

    def __init__(self, client: AsyncMongoClient[Document], db: AsyncDatabase[Document],
                 vk: VkClient, broker: Broker, published_limit: int, *,
                 token_probe_seconds: float = 60.0,
                 pages: WallPageBatcher | None = None) -> None:
        self._client = client
        self._db = db
        self._vk = vk
        self._broker = broker
        self._published_limit = published_limit
        self._probe_ms = int(token_probe_seconds * 1000)
        self._pages = pages or WallPageBatcher(vk)

    async def __call__(self, key: RefreshKey, refresh_round: Round) -> None:
        # The round carries the correlation id of the latest event it covers, so the
        # log lines of a callback lead from the gateway to this refresh and onwards.
        correlation_id = refresh_round.correlation_id or new_correlation_id()
        with structlog.contextvars.bound_contextvars(correlation_id=correlation_id):
            document = await self._db[PROJECTS].find_one(
                {"_id": {"$in": ids_labelled(key.project_id)}})
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
            rest = TokenRest.from_document(document.get("vk_token_rest"))
            if rest is not None and rest.applies_to(token_fingerprint(project.token)):
                if not await self._claim_probe(project):
                    await self._skip_resting(project, key.content, rest, correlation_id)
                    return
                metrics.TOKEN_PROBES.inc()
                log.info("vk_token_probe", project_id=project.label,
                         content_type=key.content.value)
            await self._refresh(project, key.content, refresh_round,
                                correlation_id=correlation_id, resting=rest is not None)

    async def _refresh(self, project: Project, content: ContentType, refresh_round: Round, *,
                       correlation_id: str, resting: bool) -> None:
        """One full refresh; permanent VK failures are recorded on the project, not retried."""
        started = time.perf_counter()
        bound = log.bind(project_id=project.label, content_type=content.value,
                         fence=refresh_round.fence)
        try:
            posts = await self._fetch(project, content, batched=refresh_round.reconcile)
        except VkTransientError as exc:
            # Still failing after the client's own retries: visible now, retried later.
            await self._record(project, content, error=f"{exc} (will retry)")
            metrics.REFRESHES.labels(content_type=content.value, outcome="retry").inc()
            metrics.PROJECT_REFRESH_FAILURES.labels(project_id=project.label, kind="transient").inc()
            raise
        except VkPermanentError as exc:
            token_rests = rests_token(exc)
            if token_rests:
                await self._start_rest(project, exc)
            changed = await self._record(project, content, error=str(exc),
                                         token_resting=token_rests)
            metrics.REFRESHES.labels(content_type=content.value, outcome="failed").inc()
            metrics.PROJECT_REFRESH_FAILURES.labels(project_id=project.label, kind="permanent").inc()
            bound.warning("refresh_failed", error=str(exc), code=exc.code,
                          token_resting=token_rests)
            if changed:
                await self._announce(project, content, correlation_id, UpdateReason.REFRESH_FAILED)
            return
        if resting:
            await self._end_rest(project)
        fetched_at = datetime.now(UTC)
        try:
            async with self._client.start_session() as session:
                wrote = await replace_snapshot(self._db, session, project.label, content, posts,
                                               refresh_round.fence, fetched_at)
        except StaleSnapshot:
            metrics.REFRESHES.labels(content_type=content.value, outcome="stale").inc()
            bound.info("refresh_superseded")
            return
        changed = await self._record(project, content, error=None)
        elapsed = time.perf_counter() - started
        metrics.REFRESHES.labels(content_type=content.value, outcome="ok").inc()
        metrics.REFRESH_SECONDS.labels(content_type=content.value).observe(elapsed)
        bound.info("refresh_done", posts=len(posts), seconds=round(elapsed, 3),
                   changed=wrote or changed, reconcile=refresh_round.reconcile)
        if wrote or changed:
            await self._announce(project, content, correlation_id, UpdateReason.REFRESH)
        else:
            metrics.REFRESHES_UNCHANGED.labels(content_type=content.value).inc()

    async def _fetch(self, project: Project, content: ContentType, *,
                     batched: bool) -> list[WallPost]:
        owner_id = -project.group_id
        limit = self._published_limit if content is ContentType.PUBLISHED else None
        wall_filter = {ContentType.SCHEDULED: WallFilter.POSTPONED,
                       ContentType.SUGGESTED: WallFilter.SUGGESTS}.get(content, WallFilter.ALL)
        if batched:
            # Reconciliation: one execute with the project's other caches (and other
            # projects of the token) when the first page holds everything wanted.
            count = min(WALL_GET_MAX_COUNT, limit or WALL_GET_MAX_COUNT)
            page = await self._pages.first_page(project.token, owner_id, wall_filter, count)
            if len(page.items) >= page.count or (limit is not None and len(page.items) >= limit):
                return list(page.items)[:limit]
        return await self._vk.wall_get_all(project.token, owner_id, wall_filter, limit=limit)

    async def _record(self, project: Project, content: ContentType, *, error: str | None,
                      token_resting: bool = False) -> bool:
        """Keep the last outcome per content type on the project, for users and operators;
        whether the outcome differs from the one recorded before (the time aside)."""
        status: Document = {"ok": error is None, "error": error, "at": datetime.now(UTC)}
        if token_resting:
            status["token_resting"] = True
        before = await self._db[PROJECTS].find_one_and_update(
            {"_id": project.id}, {"$set": {f"refresh_status.{content.value}": status}},
            projection={f"refresh_status.{content.value}": 1},
            return_document=ReturnDocument.BEFORE)
        previous = ((before or {}).get("refresh_status") or {}).get(content.value)
        return not isinstance(previous, dict) or outcome(previous) != outcome(status)

    async def _start_rest(self, project: Project, exc: VkError) -> None:
        """The token rests from now: the next probe is a probe interval away."""
        fingerprint = token_fingerprint(project.token)
        first = await self._db[PROJECTS].update_one(
            {"_id": project.id, "vk_token_rest.fingerprint": {"$ne": fingerprint}},
            [{"$set": {"vk_token_rest": {
                "fingerprint": fingerprint, "code": exc.code, "error": str(exc),
                "since": "$$NOW", "probe_at": {"$add": ["$$NOW", self._probe_ms]}}}}])
        if first.modified_count:
            metrics.TOKEN_RESTS.inc()
            log.warning("vk_token_resting", project_id=project.label, code=exc.code,
                        probe_seconds=self._probe_ms / 1000)

    async def _claim_probe(self, project: Project) -> bool:
        """Whether this refresh may call VK with a resting token (one per probe interval)."""
        claimed = await self._db[PROJECTS].update_one(
            {"_id": project.id, "vk_token_rest.fingerprint": token_fingerprint(project.token),
             "$expr": {"$lte": ["$vk_token_rest.probe_at", "$$NOW"]}},
            [{"$set": {"vk_token_rest.probe_at": {"$add": ["$$NOW", self._probe_ms]}}}])
        return claimed.modified_count == 1

    async def _end_rest(self, project: Project) -> None:
        ended = await self._db[PROJECTS].update_one(
            {"_id": project.id, "vk_token_rest": {"$exists": True}},
            {"$unset": {"vk_token_rest": ""}})
        if ended.modified_count:
            log.info("vk_token_rest_ended", project_id=project.label)

    async def _skip_resting(self, project: Project, content: ContentType, rest: TokenRest,
                            correlation_id: str) -> None:
        """No VK call: the token still rests. The same error again is not news."""
        metrics.REFRESHES.labels(content_type=content.value, outcome="token_resting").inc()
        log.info("refresh_skipped_token_resting", project_id=project.label,
                 content_type=content.value, code=rest.code)
        if await self._record(project, content, error=rest.error, token_resting=True):
            await self._announce(project, content, correlation_id, UpdateReason.REFRESH_FAILED)

    async def _announce(self, project: Project, content: ContentType, correlation_id: str,
                        reason: UpdateReason) -> None:
        await self._broker.publish_update(ProjectUpdated(
            project_id=project.label, content_types=(content,), reason=reason,
            correlation_id=correlation_id))
        log.info("project_update_announced", project_id=project.label,
                 content_type=content.value,
                 reason=reason)


def outcome(status: Document) -> tuple[bool, str | None, bool]:
    """What of a ``refresh_status`` entry is news when it changes: not its time."""
    error = status.get("error")
    return (status.get("ok") is True, None if error is None else str(error),
            bool(status.get("token_resting")))
