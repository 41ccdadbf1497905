"""The dashboard: a small live page at ``GET /`` and the read-only JSON API behind it.

Served by the notifier itself, so the page, its API and the update stream share one
origin (no CORS, no build step, no CDN: ``static/`` holds plain HTML, CSS and
JavaScript). :func:`setup_dashboard` mounts it on the notifier's application:

* ``GET /`` — ``static/index.html``; ``GET /dashboard/…`` — its script, style and icon.
* ``GET /api/dashboard/projects`` and ``GET /api/dashboard/projects/{id}`` — each project
  with the counts of its cached scheduled / published / suggested posts, its system
  posts by status (with publication dates), the last refresh outcome per content type
  and the seq of its latest update (for the page's "has updates" dot). Read from
  MongoDB with aggregations; projects through an inclusion projection, so tokens,
  callback secrets and confirmation codes never leave the database.
* ``GET /api/dashboard/timeline?limit=N[&after=<cursor>]`` — the latest N entries of
  the update log, each with the steps known for it (see :func:`timeline_entry`).
* Only in sandbox mode (``DASHBOARD_SANDBOX_URL`` set, e.g. ``http://127.0.0.1:8090``):
  ``POST /api/dashboard/sandbox/scheduled-post {"project_id"}`` creates a post an hour
  ahead in the project's sandbox community (proxied to the sandbox's control API, so the
  browser never talks cross-origin) and ``POST /api/dashboard/sandbox/system-post
  {"project_id", "delay_seconds"?}`` inserts a ``pending_publication`` system post due
  in ``delay_seconds`` (default 10).

The API requires ``NOTIFIER_TOKEN`` (when set) exactly like ``getUpdates``; the page
itself holds no data and is public.

Timeline steps, honestly sourced: ``callback taken`` is ``processed_events.seen_at``
(when the refresher took the VK event; the gateway's receive time is not stored);
``refresh done`` / ``announced`` is the message's ``occurred_at``; ``recorded`` is the
log entry's ``created_at``. System-post steps (``created``, ``claimed``, ``published``,
``retry``, ``error``, ``possible_error``, ``verified``/``deleted``) come from a
:class:`PostJournal` that each notifier process keeps in memory from a change stream on
``system_posts`` (posts deleted before the process started are unknown to it).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import structlog
from aiohttp import web
from bson import ObjectId, Timestamp
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from services.update_notifier.cursor import InvalidCursor, format_cursor, parse_cursor
from services.update_notifier.errors import ApiError
from services.update_notifier.keys import UPDATE_LOG
from services.update_notifier.update_log import UpdateLog
from services.update_notifier.views import read_body, require_token
from shared.documents import DocumentError, Project
from shared.logging import redact_text
from shared.mongo import PROCESSED_EVENTS, PROJECTS, SYSTEM_POSTS, ContentType, Document
from shared.retry import backoff_seconds

log = structlog.get_logger(__name__)

SANDBOX_URL_VARIABLE = "DASHBOARD_SANDBOX_URL"
STATIC_DIR = Path(__file__).with_name("static")
STATIC_PREFIX = "/dashboard"
PAGE_HEADERS = {
    "Cache-Control": "no-cache",
    # The page may be opened with ?access_token=: never send it on as a Referer.
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"),
}

# system_posts.status values of the data contract, in lifecycle order.
STATUSES = ("pending_publication", "publishing", "error", "possible_error")
MAX_PROJECTS = 500
POSTS_PER_PROJECT = 20
TEXT_PREVIEW_CHARS = 160
# The "has updates" dot compares a project's latest update with what the page saw; the
# latest update is looked for among this many newest log entries (bounded cost).
RECENT_UPDATES_WINDOW = 5000
TIMELINE_DEFAULT = 30
TIMELINE_MAX = 200
SANDBOX_TIMEOUT_SECONDS = 5.0
SANDBOX_SCHEDULE_AHEAD_SECONDS = 3600
SYSTEM_POST_DEFAULT_DELAY_SECONDS = 10.0
BODY_LIMIT_BYTES = 4096
# An update log entry may be read before the journal saw the change it announces (two
# change streams); a recent entry without a known step waits this long for it.
JOURNAL_CATCH_UP_SECONDS = 1.0
RECENT_ENTRY = timedelta(seconds=10)
# The journal's change stream waits at most this long per getMore, so it stops that fast.
JOURNAL_AWAIT_MS = 250
JOURNAL_STOP_SECONDS = 3.0
# System-post steps the post tracker announces with ProjectUpdated(reason="system_post").
ANNOUNCED_STEPS = frozenset({"published", "retry", "error", "possible_error", "verified", "deleted"})
# A step is matched to an announcement at most this far after it (clocks of the tracker,
# of mongod and of the announcing process may differ slightly).
CLOCK_SLACK = timedelta(seconds=1)


def iso(moment: datetime | None) -> str | None:
    """``2024-05-01T12:00:00.123Z``, or None."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _as_datetime(value: Any) -> datetime | None:
    return value if isinstance(value, datetime) else None


def _text_preview(value: Any) -> str:
    text = value if isinstance(value, str) else ""
    return text if len(text) <= TEXT_PREVIEW_CHARS else text[:TEXT_PREVIEW_CHARS - 1] + "…"


def _safe_error(value: Any) -> str | None:
    return None if value is None else redact_text(str(value))


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _group_id(project: Document) -> int | None:
    """The project's community id as the shared reader reads it (a double 123.0 is 123)."""
    try:
        return Project.from_document(project).vk_group_id
    except DocumentError:
        return None


# --- the journal of system posts ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Step:
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
    steps: list[Step] = field(default_factory=list)

    def add(self, name: str, at: datetime, detail: str | None = None) -> None:
        if any(step.name == name and step.at == at for step in self.steps):
            return  # seen twice: in the start-up snapshot and in the stream
        self.steps.append(Step(name, at, detail))
        self.steps.sort(key=lambda step: step.at)

    def announced_step(self, occurred_at: datetime) -> Step | None:
        """The step an announcement made at ``occurred_at`` reported: the nearest one in time.

        The tracker announces right after each write, so its step is the closest one
        at or before the announcement (within :data:`CLOCK_SLACK`).
        """
        candidates = [step for step in self.steps
                      if step.name in ANNOUNCED_STEPS and step.at <= occurred_at + CLOCK_SLACK]
        return min(candidates, key=lambda step: abs(occurred_at - step.at), default=None)

    def path_to(self, last: Step | None, occurred_at: datetime) -> list[Step]:
        """The steps up to ``last`` (or up to ``occurred_at``) and the planned date, in time order."""
        until = last.at if last is not None else occurred_at
        steps = [step for step in self.steps if step.at <= until]
        if self.publication_date is not None and self.publication_date <= until:
            steps.append(Step("due", self.publication_date, "publication_date"))
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
        self._stop = asyncio.Event()

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
        trace.text = _text_preview(document.get("text"))
        trace.publication_date = _as_datetime(document.get("publication_date"))
        trace.status = str(document.get("status"))
        if created_at is not None:
            trace.add("created", created_at)
        if (claimed_at := _as_datetime(document.get("claimed_at"))) is not None:
            trace.add("claimed", claimed_at)
        if (published_at := _as_datetime(document.get("published_at"))) is not None:
            trace.add("published", published_at, f"wall post {document.get('vk_post_id')}")
        failed_at = _as_datetime(document.get("failed_at"))
        if trace.status in {"error", "possible_error"} and failed_at is not None:
            trace.add(trace.status, failed_at, _safe_error(document.get("error")))
        self._changed.set()

    def apply_update(self, post_id: str, fields: Mapping[str, Any], at: datetime) -> None:
        """An update's ``updatedFields``: the steps the tracker's writes stand for."""
        trace = self._trace(post_id)
        self._set_correlation(trace, fields.get("correlation_id"))
        if "text" in fields:
            trace.text = _text_preview(fields["text"])
        if "publication_date" in fields:
            trace.publication_date = _as_datetime(fields["publication_date"])
        status = fields.get("status")
        if status == "publishing" and (claimed_at := _as_datetime(fields.get("claimed_at"))):
            trace.add("claimed", claimed_at)
        if (published_at := _as_datetime(fields.get("published_at"))) is not None:
            trace.add("published", published_at, f"wall post {fields.get('vk_post_id')}")
        if fields.get("outcome_unknown") is True:
            trace.add("outcome_unknown", at, _safe_error(fields.get("last_error")))
        if status == "pending_publication":
            if "last_error" in fields:
                trace.add("retry", at, _safe_error(fields.get("last_error")))
            else:
                trace.add("pending_again", at)
        if status in {"error", "possible_error"}:
            trace.add(str(status), _as_datetime(fields.get("failed_at")) or at,
                      _safe_error(fields.get("error")))
        if isinstance(status, str):
            trace.status = status
        self._changed.set()

    def apply_delete(self, post_id: str, at: datetime) -> None:
        trace = self._trace(post_id)
        if trace.status == "publishing":
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

    def stop(self) -> None:
        """Make :meth:`follow` return (within :data:`JOURNAL_AWAIT_MS`)."""
        self._stop.set()

    async def follow(self, posts: AsyncCollection[Document]) -> None:
        """Keep the journal current until :meth:`stop`, re-opening the stream on failures.

        Stopped by a flag between short ``getMore`` waits rather than by cancellation:
        cancelling a change stream's ``getMore`` in flight can leave it hanging (seen with
        pymongo 4.20), and with it the notifier's shutdown.
        """
        failures = 0
        while not self._stop.is_set():
            try:
                async with await posts.watch(max_await_time_ms=JOURNAL_AWAIT_MS) as stream:
                    # Opened before the snapshot: a change lands in one, the other, or both.
                    snapshot_at = datetime.now(UTC)
                    present: set[str] = set()
                    async for document in posts.find({}, sort=[("publication_date", DESCENDING)],
                                                     limit=self.capacity):
                        self.apply_document(document)
                        present.add(str(document["_id"]))
                    if len(present) < self.capacity:
                        self.mark_missing(present, snapshot_at)
                    failures = 0
                    while not self._stop.is_set():
                        change = await stream.try_next()
                        if change is not None:
                            self.apply_change(change)
                        elif not stream.alive:
                            raise RuntimeError("change stream ended")
            except Exception as exc:
                failures += 1
                delay = backoff_seconds(failures)
                log.warning("dashboard_journal_follow_failed", retry_in_seconds=round(delay, 3),
                            error=redact_text(f"{type(exc).__name__}: {exc}"))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), delay)


# --- application wiring -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DashboardConfig:
    sandbox_url: str | None = None


CONFIG = web.AppKey("dashboard_config", DashboardConfig)
JOURNAL = web.AppKey("dashboard_journal", PostJournal)
SANDBOX_SESSION = web.AppKey("dashboard_sandbox_session", aiohttp.ClientSession)


def sandbox_url_from_environment() -> str | None:
    """``DASHBOARD_SANDBOX_URL`` without a trailing slash; None when unset or not http(s)."""
    value = os.environ.get(SANDBOX_URL_VARIABLE, "").strip().rstrip("/")
    if not value:
        return None
    if not value.startswith(("http://", "https://")):
        log.error("dashboard_sandbox_url_ignored", variable=SANDBOX_URL_VARIABLE,
                  reason="not an http(s) URL")
        return None
    return value


def setup_dashboard(app: web.Application, *, sandbox_url: str | None = None) -> None:
    """Mount the page, its API and the system-post journal on the notifier ``app``.

    Call after the update log's cleanup context is registered (it needs MongoDB).
    Sandbox mode comes from ``sandbox_url``, else from ``DASHBOARD_SANDBOX_URL``.
    """
    config = DashboardConfig(sandbox_url or sandbox_url_from_environment())
    app[CONFIG] = config
    app[JOURNAL] = PostJournal()
    app.cleanup_ctx.append(follow_system_posts)
    router = app.router
    router.add_get("/", index)
    router.add_static(STATIC_PREFIX, STATIC_DIR)
    router.add_get("/api/dashboard/projects", list_projects)
    router.add_get("/api/dashboard/projects/{project_id}", get_project)
    router.add_get("/api/dashboard/timeline", get_timeline)
    if config.sandbox_url is not None:
        app.cleanup_ctx.append(sandbox_session)
        router.add_post("/api/dashboard/sandbox/scheduled-post", create_scheduled_post)
        router.add_post("/api/dashboard/sandbox/system-post", create_system_post)


async def follow_system_posts(app: web.Application) -> AsyncIterator[None]:
    journal = app[JOURNAL]
    posts = app[UPDATE_LOG].entries.database[SYSTEM_POSTS]
    task = asyncio.create_task(journal.follow(posts), name="dashboard journal")
    yield
    journal.stop()
    try:
        async with asyncio.timeout(JOURNAL_STOP_SECONDS):
            await asyncio.shield(task)
    except TimeoutError:
        log.warning("dashboard_journal_stop_timed_out")
        task.cancel()  # last resort; closing the MongoDB client ends it too


async def sandbox_session(app: web.Application) -> AsyncIterator[None]:
    timeout = aiohttp.ClientTimeout(total=SANDBOX_TIMEOUT_SECONDS)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        app[SANDBOX_SESSION] = session
        yield


def _database(request: web.Request) -> AsyncDatabase[Document]:
    return request.app[UPDATE_LOG].entries.database


# --- the page ---------------------------------------------------------------------------------


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "index.html", headers=PAGE_HEADERS)


# --- projects ---------------------------------------------------------------------------------

# Inclusion projection: nothing else of a project (tokens, secrets, codes) is ever read.
PROJECT_FIELDS = {"name": True, "vk_group_id": True, "refresh_status": True,
                  "reconciled_at": True, "vk_token_rest.code": True,
                  "vk_token_rest.error": True, "vk_token_rest.since": True,
                  "vk_token_rest.probe_at": True}


async def list_projects(request: web.Request) -> web.Response:
    """``GET /api/dashboard/projects``: every project (up to 500) with its counts."""
    require_token(request)
    update_log = request.app[UPDATE_LOG]
    # Read first: the page follows the stream from here, so nothing after it is missed.
    latest = await update_log.latest_seq()
    db = _database(request)
    projects = await db[PROJECTS].find({}, PROJECT_FIELDS, sort=[("_id", ASCENDING)],
                                       limit=MAX_PROJECTS).to_list()
    return web.json_response({
        "projects": await summarize_projects(db, update_log, projects),
        "cursor": format_cursor(latest),
        "sandbox": request.app[CONFIG].sandbox_url is not None,
        "statuses": list(STATUSES),
    })


async def get_project(request: web.Request) -> web.Response:
    """``GET /api/dashboard/projects/{id}``: one project, as in the list; 404 if unknown."""
    require_token(request)
    db = _database(request)
    project = await db[PROJECTS].find_one({"_id": request.match_info["project_id"]}, PROJECT_FIELDS)
    if project is None:
        raise ApiError(404, "no such project")
    [summary] = await summarize_projects(db, request.app[UPDATE_LOG], [project])
    return web.json_response({"project": summary})


async def summarize_projects(db: AsyncDatabase[Document], update_log: UpdateLog,
                             projects: list[Document]) -> list[dict[str, Any]]:
    ids = [project["_id"] for project in projects]
    if not ids:
        return []
    cache_counts, (status_counts, posts), last_updates = await asyncio.gather(
        asyncio.gather(*(_count_by_project(db[content.collection], ids) for content in ContentType)),
        _system_posts(db, ids),
        _last_updates(update_log, ids),
    )
    summaries = []
    for project in projects:
        project_id = project["_id"]
        last = last_updates.get(project_id)
        summaries.append({
            "id": str(project_id),
            "name": str(project.get("name") or project_id),
            "vkGroupId": _group_id(project),
            "counts": {content.value: counts.get(project_id, 0)
                       for content, counts in zip(ContentType, cache_counts, strict=True)},
            "systemPosts": {
                "counts": {status: status_counts.get((project_id, status), 0) for status in STATUSES},
                "total": sum(n for (pid, _), n in status_counts.items() if pid == project_id),
                "posts": posts.get(project_id, []),
            },
            "refreshStatus": _refresh_status(project.get("refresh_status")),
            "lastReconciledAt": iso(_as_datetime(project.get("reconciled_at"))),
            "tokenRest": _token_rest(project.get("vk_token_rest")),
            "lastUpdate": last,
        })
    return summaries


async def _count_by_project(collection: AsyncCollection[Document], ids: list[Any]) -> dict[Any, int]:
    cursor = await collection.aggregate([
        {"$match": {"project_id": {"$in": ids}}},
        {"$group": {"_id": "$project_id", "n": {"$sum": 1}}},
    ])
    return {group["_id"]: int(group["n"]) async for group in cursor}


async def _system_posts(db: AsyncDatabase[Document], ids: list[Any]
                        ) -> tuple[dict[tuple[Any, str], int], dict[Any, list[dict[str, Any]]]]:
    """Counts per (project, status), and each project's first posts by publication date."""
    collection = db[SYSTEM_POSTS]
    counts_cursor = await collection.aggregate([
        {"$match": {"project_id": {"$in": ids}}},
        {"$group": {"_id": {"p": "$project_id", "s": "$status"}, "n": {"$sum": 1}}},
    ])
    counts = {(group["_id"].get("p"), str(group["_id"].get("s"))): int(group["n"])
              async for group in counts_cursor}
    posts_cursor = await collection.aggregate([
        {"$match": {"project_id": {"$in": ids}}},
        {"$sort": {"project_id": 1, "publication_date": 1, "_id": 1}},
        {"$group": {"_id": "$project_id", "posts": {"$firstN": {"n": POSTS_PER_PROJECT, "input": {
            "id": "$_id", "status": "$status", "publication_date": "$publication_date",
            "text": {"$cond": [{"$eq": [{"$type": "$text"}, "string"]},
                               {"$substrCP": ["$text", 0, TEXT_PREVIEW_CHARS + 1]}, ""]},
            "vk_post_id": "$vk_post_id", "error": "$error", "last_error": "$last_error",
            "attempts": "$attempts", "claimed_at": "$claimed_at",
            "published_at": "$published_at", "failed_at": "$failed_at",
        }}}}},
    ])
    posts = {group["_id"]: [_post_json(post) for post in group["posts"]]
             async for group in posts_cursor}
    return counts, posts


def _post_json(post: Document) -> dict[str, Any]:
    post_id = post.get("id")
    return {
        "id": str(post_id),
        "status": str(post.get("status")),
        "publicationDate": iso(_as_datetime(post.get("publication_date"))),
        "text": _text_preview(post.get("text")),
        "vkPostId": _int_or_none(post.get("vk_post_id")),
        "error": _safe_error(post.get("error")),
        "lastError": _safe_error(post.get("last_error")),
        "attempts": _int_or_none(post.get("attempts")) or 0,
        "claimedAt": iso(_as_datetime(post.get("claimed_at"))),
        "publishedAt": iso(_as_datetime(post.get("published_at"))),
        "failedAt": iso(_as_datetime(post.get("failed_at"))),
        "createdAt": iso(post_id.generation_time) if isinstance(post_id, ObjectId) else None,
    }


async def _last_updates(update_log: UpdateLog, ids: list[Any]) -> dict[Any, dict[str, Any]]:
    """Each project's latest entry among the newest :data:`RECENT_UPDATES_WINDOW` ones."""
    cursor = await update_log.entries.aggregate([
        {"$sort": {"_id": -1}},
        {"$limit": RECENT_UPDATES_WINDOW},
        {"$match": {"project_id": {"$in": ids}}},
        {"$group": {"_id": "$project_id", "seq": {"$max": "$_id"}, "at": {"$max": "$created_at"}}},
    ])
    return {group["_id"]: {"seq": int(group["seq"]), "cursor": format_cursor(int(group["seq"])),
                           "recordedAt": iso(_as_datetime(group.get("at")))}
            async for group in cursor}


def _token_rest(value: Any) -> dict[str, Any] | None:
    """The project's VK token resting after VK refused it (no fingerprint: never read)."""
    if not isinstance(value, dict):
        return None
    return {"code": _int_or_none(value.get("code")), "error": _safe_error(value.get("error")),
            "since": iso(_as_datetime(value.get("since"))),
            "probeAt": iso(_as_datetime(value.get("probe_at")))}


def _refresh_status(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        return {}
    result: dict[str, Any] = {}
    for content in ContentType:
        status = value.get(content.value)
        if isinstance(status, dict):
            result[content.value] = {"ok": bool(status.get("ok")),
                                     "error": _safe_error(status.get("error")),
                                     "at": iso(_as_datetime(status.get("at"))),
                                     "tokenResting": bool(status.get("token_resting"))}
    return result


# --- the timeline -------------------------------------------------------------------------------

TIMELINE_FIELDS = {"project_id": True, "content_types": True, "reason": True,
                   "correlation_id": True, "occurred_at": True, "created_at": True}


def _query_int(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"{name} must be an integer") from None
    if not low <= value <= high:
        raise ApiError(400, f"{name} must be between {low} and {high}")
    return value


async def get_timeline(request: web.Request) -> web.Response:
    """``GET /api/dashboard/timeline?limit=N&after=<cursor>``: the newest N entries (after it)."""
    require_token(request)
    limit = _query_int(request, "limit", TIMELINE_DEFAULT, 1, TIMELINE_MAX)
    after: int | None = None
    if raw_after := request.query.get("after"):
        try:
            after = parse_cursor(raw_after)
        except InvalidCursor as exc:
            raise ApiError(400, str(exc)) from None
    update_log = request.app[UPDATE_LOG]
    latest = await update_log.latest_seq()
    query = {} if after is None else {"_id": {"$gt": after}}
    documents = await update_log.entries.find(query, TIMELINE_FIELDS, sort=[("_id", DESCENDING)],
                                              limit=limit).to_list()
    documents.reverse()
    journal = request.app[JOURNAL]
    if _waits_for_journal(documents, journal):
        await journal.wait_changed(JOURNAL_CATCH_UP_SECONDS)
    db = _database(request)
    names, taken = await asyncio.gather(_project_names(db, documents), _callbacks_taken(db, documents))
    return web.json_response({
        "entries": [timeline_entry(document, names, taken, journal) for document in documents],
        "cursor": format_cursor(latest),
    })


def _waits_for_journal(documents: Iterable[Document], journal: PostJournal) -> bool:
    """A recent system-post entry whose step the journal does not know (yet)."""
    recent = datetime.now(UTC) - RECENT_ENTRY
    for document in documents:
        occurred_at = _as_datetime(document.get("occurred_at"))
        if document.get("reason") != "system_post" or occurred_at is None or occurred_at < recent:
            continue
        trace = journal.trace_for(str(document.get("correlation_id")))
        if trace is None or trace.announced_step(occurred_at) is None:
            return True
    return False


async def _project_names(db: AsyncDatabase[Document], documents: list[Document]) -> dict[Any, str]:
    ids = list({document.get("project_id") for document in documents})
    if not ids:
        return {}
    cursor = db[PROJECTS].find({"_id": {"$in": ids}}, {"name": True})
    return {project["_id"]: str(project.get("name") or project["_id"]) async for project in cursor}


async def _callbacks_taken(db: AsyncDatabase[Document], documents: list[Document]
                           ) -> dict[str, datetime]:
    """When the refresher took the callback behind each refresh (``processed_events``)."""
    ids = list({str(document.get("correlation_id")) for document in documents
                if document.get("reason") in {"refresh", "refresh_failed"}})
    if not ids:
        return {}
    cursor = db[PROCESSED_EVENTS].find({"claimed_by": {"$in": ids}},
                                       {"claimed_by": True, "seen_at": True})
    taken: dict[str, datetime] = {}
    async for event in cursor:
        seen_at = _as_datetime(event.get("seen_at"))
        key = str(event.get("claimed_by"))
        if seen_at is not None and (key not in taken or seen_at < taken[key]):
            taken[key] = seen_at
    return taken


def timeline_entry(document: Document, names: Mapping[Any, str], taken: Mapping[str, datetime],
                   journal: PostJournal) -> dict[str, Any]:
    """One update log entry with the steps known for it, oldest first, ending at ``recorded``.

    ``announced`` names what the entry reports: ``refresh done`` / ``refresh failed``
    for the refresher; for the post tracker the system-post step it announced
    (``published``, ``verified``, ``error``…), or None when this process cannot tell.
    """
    seq = int(document["_id"])
    project_id = document.get("project_id")
    reason = str(document.get("reason") or "")
    correlation_id = str(document.get("correlation_id") or "")
    occurred_at = _as_datetime(document.get("occurred_at"))
    created_at = _as_datetime(document.get("created_at"))
    steps: list[Step] = []
    announced: str | None
    post: dict[str, Any] | None = None
    note: str | None = None
    if reason in {"refresh", "refresh_failed"}:
        if (seen_at := taken.get(correlation_id)) is not None:
            steps.append(Step("callback taken", seen_at,
                              "by the refresher (processed_events.seen_at)"))
        announced = "refresh done" if reason == "refresh" else "refresh failed"
        if occurred_at is not None:
            steps.append(Step(announced, occurred_at, "announced (occurred_at)"))
    elif reason == "system_post":
        trace = journal.trace_for(correlation_id)
        step = None
        if trace is None:
            note = "post not known to this notifier (changed before it started)"
        elif occurred_at is not None:
            step = trace.announced_step(occurred_at)
            steps.extend(trace.path_to(step, occurred_at))
            post = trace.to_json()
        announced = step.name if step is not None else None
        if occurred_at is not None:
            steps.append(Step("announced", occurred_at, "occurred_at"))
    else:
        announced = reason or None
        if occurred_at is not None:
            steps.append(Step(reason or "occurred", occurred_at, "occurred_at"))
    if created_at is not None:
        steps.append(Step("recorded", created_at, "in the update log (created_at)"))
    return {
        "seq": seq,
        "cursor": format_cursor(seq),
        "projectId": str(project_id),
        "projectName": names.get(project_id, str(project_id)),
        "reason": reason,
        "contentTypes": [str(kind) for kind in document.get("content_types") or ()],
        "correlationId": correlation_id,
        "occurredAt": iso(occurred_at),
        "recordedAt": iso(created_at),
        "announced": announced,
        "steps": [step.to_json() for step in steps],
        "post": post,
        "note": note,
    }


# --- sandbox mode ---------------------------------------------------------------------------------


class _ProjectBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    project_id: str = Field(min_length=1, max_length=200)


class _SystemPostBody(_ProjectBody):
    delay_seconds: float = Field(default=SYSTEM_POST_DEFAULT_DELAY_SECONDS, ge=0, le=86400)


async def _parse(request: web.Request, model: type[_ProjectBody]) -> Any:
    try:
        return model.model_validate_json(await read_body(request, BODY_LIMIT_BYTES))
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise ApiError(400, " ".join(f"{where}: {first['msg']}".split())) from None


async def _sandbox_project(request: web.Request, project_id: str) -> Document:
    project = await _database(request)[PROJECTS].find_one({"_id": project_id},
                                                           {"name": True, "vk_group_id": True})
    if project is None:
        raise ApiError(404, "no such project")
    return project


async def create_scheduled_post(request: web.Request) -> web.Response:
    """Sandbox mode: a post an hour ahead in the project's community (VK then calls back)."""
    require_token(request)
    body: _ProjectBody = await _parse(request, _ProjectBody)
    project = await _sandbox_project(request, body.project_id)
    group_id = _group_id(project)
    if group_id is None or group_id <= 0:
        raise ApiError(409, "project has no valid vk_group_id")
    sandbox_url = request.app[CONFIG].sandbox_url
    publish_date = int(time.time()) + SANDBOX_SCHEDULE_AHEAD_SECONDS
    text = f"Dashboard scheduled post {datetime.now(UTC):%H:%M:%S} UTC"
    url = f"{sandbox_url}/_sandbox/communities/{group_id}/posts"
    try:
        async with request.app[SANDBOX_SESSION].post(
                url, json={"text": text, "publish_date": publish_date}) as response:
            payload = await response.json(content_type=None)
            if response.status >= 400:
                message = payload.get("error") if isinstance(payload, dict) else payload
                raise ApiError(502, f"sandbox answered {response.status}: {message}")
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise ApiError(502, f"sandbox unreachable: {type(exc).__name__}") from None
    post_id = _int_or_none(payload.get("id")) if isinstance(payload, dict) else None
    log.info("dashboard_sandbox_post_created", project_id=body.project_id, group_id=group_id,
             vk_post_id=post_id)
    return web.json_response({"ok": True, "post": {
        "id": post_id, "text": text,
        "publishDate": iso(datetime.fromtimestamp(publish_date, UTC))}})


async def create_system_post(request: web.Request) -> web.Response:
    """Sandbox mode: a ``pending_publication`` system post due in ``delay_seconds``."""
    require_token(request)
    body: _SystemPostBody = await _parse(request, _SystemPostBody)
    await _sandbox_project(request, body.project_id)
    now = datetime.now(UTC)
    publication_date = now + timedelta(seconds=body.delay_seconds)
    text = f"Dashboard system post {now:%H:%M:%S} UTC"
    result = await _database(request)[SYSTEM_POSTS].insert_one({
        "project_id": body.project_id, "text": text, "attachments": [],
        "publication_date": publication_date, "status": "pending_publication",
        "vk_post_id": None, "error": None,
    })
    log.info("dashboard_system_post_created", project_id=body.project_id,
             post_id=str(result.inserted_id), publication_date=iso(publication_date))
    return web.json_response({"ok": True, "post": {
        "id": str(result.inserted_id), "text": text, "status": "pending_publication",
        "publicationDate": iso(publication_date)}})
