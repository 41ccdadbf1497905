"""What each notifier process saw happen to system posts: the dashboard's journal.

System-post steps (``created``, ``claimed``, ``published``, ``retry``, ``error``,
``possible_error``, ``verified``/``deleted``) come from a :class:`PostJournal` that each
notifier process keeps in memory from a change stream on ``system_posts`` (posts
deleted before the process started are unknown to it), followed by
:func:`shared.change_stream.follow_changes` (:func:`follow_system_posts`; stopped by
cancelling it).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from bson import Timestamp
from pymongo import DESCENDING
from pymongo.asynchronous.collection import AsyncCollection

from services.update_notifier.dashboard.values import as_datetime, iso, safe_error, text_preview
from shared.change_stream import follow_changes
from shared.documents import PostStatus
from shared.logging import redact_text
from shared.mongo import Document
from shared.retry import backoff_seconds

log = structlog.get_logger(__name__)

# System-post steps the post tracker announces with ProjectUpdated(reason="system_post").
ANNOUNCED_STEPS = frozenset({"published", "retry", "error", "possible_error", "verified", "deleted"})
# A step is matched to an announcement at most this far after it (clocks of the tracker,
# of mongod and of the announcing process may differ slightly).
CLOCK_SLACK = timedelta(seconds=1)


@dataclass(frozen=True, slots=True)
class TimelineStep:
    """One step of an update's path, as the timeline shows it."""

    name: str
    at: datetime
    detail: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"step": self.name, "at": iso(self.at), "detail": self.detail}


@dataclass(slots=True)
class PostTrace:
    """What one notifier process saw happen to one system post."""

    post_id: str
    project_id: str | None = None
    correlation_id: str | None = None
    text: str = ""
    publication_date: datetime | None = None
    status: str | None = None
    steps: list[TimelineStep] = field(default_factory=list)

    def add(self, name: str, at: datetime, detail: str | None = None) -> None:
        if any(step.name == name and step.at == at for step in self.steps):
            return  # seen twice: in the start-up snapshot and in the stream
        self.steps.append(TimelineStep(name, at, detail))
        self.steps.sort(key=lambda step: step.at)

    def announced_step(self, occurred_at: datetime) -> TimelineStep | None:
        """The step an announcement made at ``occurred_at`` reported.

        The tracker announces right after each write, so its step is the latest one at or
        before the announcement, even when the next step follows within milliseconds (a
        post verified right after it was published). Only when there is none, a step up to
        :data:`CLOCK_SLACK` later (the clocks of the tracker and of mongod may differ).
        """
        announced = [step for step in self.steps if step.name in ANNOUNCED_STEPS]
        before = [step for step in announced if step.at <= occurred_at]
        if before:
            return before[-1]  # self.steps is kept in time order
        return next((step for step in announced if step.at <= occurred_at + CLOCK_SLACK), None)

    def path_to(self, last: TimelineStep | None, occurred_at: datetime) -> list[TimelineStep]:
        """The steps up to ``last`` (or up to ``occurred_at``) and the planned date, in time order."""
        until = last.at if last is not None else occurred_at
        steps = [step for step in self.steps if step.at <= until]
        if self.publication_date is not None and self.publication_date <= until:
            steps.append(TimelineStep("due", self.publication_date, "publication_date"))
        return sorted(steps, key=lambda step: step.at)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.post_id, "text": self.text, "status": self.status,
                "publicationDate": iso(self.publication_date)}


def _event_time(change: Mapping[str, Any]) -> datetime:
    """When a change happened by mongod's clock (``wallTime``, MongoDB 6.0+), else now."""
    if isinstance(wall := change.get("wallTime"), datetime):
        return wall if wall.tzinfo else wall.replace(tzinfo=UTC)
    if isinstance(cluster := change.get("clusterTime"), Timestamp):
        return cluster.as_datetime()
    return datetime.now(UTC)


class PostJournal:
    """The recent history of system posts, from a change stream on ``system_posts``.

    In memory and bounded (the ``capacity`` most recently touched posts): each notifier
    process keeps its own, from its start on. A post that was ``publishing`` when it was
    deleted is recorded as ``verified`` (the tracker deletes a post only after finding it
    on the wall); any other deletion as ``deleted``.
    """

    def __init__(self, capacity: int = 1000) -> None:
        self.capacity = capacity
        self._traces: OrderedDict[str, PostTrace] = OrderedDict()
        self._by_correlation: dict[str, str] = {}
        self._changed = asyncio.Event()

    def __len__(self) -> int:
        return len(self._traces)

    def trace_for(self, correlation_id: str) -> PostTrace | None:
        """The post an announcement's correlation id names (the tracker falls back to the id)."""
        key = self._by_correlation.get(correlation_id, correlation_id)
        return self._traces.get(key)

    async def wait_changed(self, timeout: float) -> None:
        self._changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout)

    def _trace(self, post_id: str) -> PostTrace:
        trace = self._traces.get(post_id)
        if trace is None:
            trace = self._traces[post_id] = PostTrace(post_id)
            while len(self._traces) > self.capacity:
                _, evicted = self._traces.popitem(last=False)
                if evicted.correlation_id is not None:
                    self._by_correlation.pop(evicted.correlation_id, None)
        else:
            self._traces.move_to_end(post_id)
        return trace

    def _set_correlation(self, trace: PostTrace, correlation_id: Any) -> None:
        if isinstance(correlation_id, str) and correlation_id:
            trace.correlation_id = correlation_id
            self._by_correlation[correlation_id] = trace.post_id

    def apply_document(self, document: Document, *, created_at: datetime | None = None) -> None:
        """A whole document (an insert, a replace, or the start-up snapshot)."""
        trace = self._trace(str(document["_id"]))
        trace.project_id = str(document.get("project_id"))
        self._set_correlation(trace, document.get("correlation_id"))
        trace.text = text_preview(document.get("text"))
        trace.publication_date = as_datetime(document.get("publication_date"))
        trace.status = str(document.get("status"))
        if created_at is not None:
            trace.add("created", created_at)
        if (claimed_at := as_datetime(document.get("claimed_at"))) is not None:
            trace.add("claimed", claimed_at)
        if (published_at := as_datetime(document.get("published_at"))) is not None:
            trace.add("published", published_at, f"wall post {document.get('vk_post_id')}")
        failed_at = as_datetime(document.get("failed_at"))
        if trace.status in {PostStatus.ERROR, PostStatus.POSSIBLE_ERROR} and failed_at is not None:
            trace.add(trace.status, failed_at, safe_error(document.get("error")))
        self._changed.set()

    def apply_update(self, post_id: str, fields: Mapping[str, Any], at: datetime) -> None:
        """An update's ``updatedFields``: the steps the tracker's writes stand for."""
        trace = self._trace(post_id)
        self._set_correlation(trace, fields.get("correlation_id"))
        if "text" in fields:
            trace.text = text_preview(fields["text"])
        if "publication_date" in fields:
            trace.publication_date = as_datetime(fields["publication_date"])
        status = fields.get("status")
        if status == PostStatus.PUBLISHING and (claimed_at := as_datetime(fields.get("claimed_at"))):
            trace.add("claimed", claimed_at)
        if (published_at := as_datetime(fields.get("published_at"))) is not None:
            trace.add("published", published_at, f"wall post {fields.get('vk_post_id')}")
        if fields.get("outcome_unknown") is True:
            trace.add("outcome_unknown", at, safe_error(fields.get("last_error")))
        if status == PostStatus.PENDING:
            if "last_error" in fields:
                trace.add("retry", at, safe_error(fields.get("last_error")))
            else:
                trace.add("pending_again", at)
        if status in {PostStatus.ERROR, PostStatus.POSSIBLE_ERROR}:
            trace.add(str(status), as_datetime(fields.get("failed_at")) or at,
                      safe_error(fields.get("error")))
        if isinstance(status, str):
            trace.status = status
        self._changed.set()

    def apply_delete(self, post_id: str, at: datetime) -> None:
        trace = self._trace(post_id)
        if trace.status == PostStatus.PUBLISHING:
            trace.add("verified", at, "found on the wall; the record was deleted")
            trace.status = "verified"
        else:
            trace.add("deleted", at, "the record was deleted")
            trace.status = "deleted"
        self._changed.set()

    def apply_change(self, change: Mapping[str, Any]) -> None:
        operation = change.get("operationType")
        key = change.get("documentKey") or {}
        if "_id" not in key:
            return
        at = _event_time(change)
        if operation == "insert" and isinstance(document := change.get("fullDocument"), dict):
            self.apply_document(document, created_at=at)
        elif operation == "replace" and isinstance(document := change.get("fullDocument"), dict):
            self.apply_document(document)
        elif operation == "update":
            description = change.get("updateDescription") or {}
            self.apply_update(str(key["_id"]), description.get("updatedFields") or {}, at)
        elif operation == "delete":
            self.apply_delete(str(key["_id"]), at)

    def mark_missing(self, present: set[str], at: datetime) -> None:
        """After a (re)start of the stream: posts that vanished while it was not open."""
        for trace in self._traces.values():
            if trace.post_id not in present and trace.status not in {"verified", "deleted", "gone"}:
                trace.add("gone", at, "no longer in system_posts (deleted while not watched)")
                trace.status = "gone"


async def follow_system_posts(journal: PostJournal, posts: AsyncCollection[Document]) -> None:
    """Keep ``journal`` current from ``posts``' change stream, re-opening it; until cancelled."""
    await follow_changes(posts.watch, JournalFollower(journal, posts))


class JournalFollower:
    """The consumer of ``system_posts``' change stream (see :func:`follow_system_posts`)."""

    def __init__(self, journal: PostJournal, posts: AsyncCollection[Document]) -> None:
        self._journal = journal
        self._posts = posts

    async def opened(self) -> None:
        """The latest posts: the stream opened first, so a change lands here, there, or both."""
        journal = self._journal
        snapshot_at = datetime.now(UTC)
        present: set[str] = set()
        async for document in self._posts.find({}, sort=[("publication_date", DESCENDING)],
                                               limit=journal.capacity):
            journal.apply_document(document)
            present.add(str(document["_id"]))
        if len(present) < journal.capacity:
            journal.mark_missing(present, snapshot_at)

    def changed(self, change: Document) -> None:
        self._journal.apply_change(change)

    def closed(self) -> None:
        pass

    async def lost(self, error: Exception, failures: int) -> None:
        delay = backoff_seconds(failures)
        log.warning("dashboard_journal_follow_failed", retry_in_seconds=round(delay, 3),
                    error=redact_text(f"{type(error).__name__}: {error}"))
        await asyncio.sleep(delay)
