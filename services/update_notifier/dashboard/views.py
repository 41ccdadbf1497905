"""The page and the dashboard's read-only JSON API (see the package docstring)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web
from pymongo.asynchronous.database import AsyncDatabase

from services.update_notifier.cursor import InvalidCursor, format_cursor, parse_cursor
from services.update_notifier.dashboard.queries import (
    STATUSES,
    callbacks_taken,
    latest_entries,
    project_names,
    read_project,
    read_projects,
    summarize_projects,
)
from services.update_notifier.dashboard.timeline import timeline_entry, waits_for_journal
from services.update_notifier.errors import ApiError
from services.update_notifier.keys import JOURNAL, SETTINGS, UPDATE_LOG
from services.update_notifier.views import require_token
from shared.mongo import Document

STATIC_DIR = Path(__file__).parent.parent / "static"
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
TIMELINE_DEFAULT = 30
TIMELINE_MAX = 200
# How long a recent system-post entry waits for the journal to see its step.
JOURNAL_CATCH_UP_SECONDS = 1.0


def database(request: web.Request) -> AsyncDatabase[Document]:
    return request.app[UPDATE_LOG].entries.database


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "index.html", headers=PAGE_HEADERS)


async def list_projects(request: web.Request) -> web.Response:
    """``GET /api/dashboard/projects``: every project (up to 500) with its counts."""
    require_token(request)
    update_log = request.app[UPDATE_LOG]
    # Read first: the page follows the stream from here, so nothing after it is missed.
    latest = await update_log.latest_seq()
    db = database(request)
    projects = await read_projects(db)
    return web.json_response({
        "projects": await summarize_projects(db, update_log, projects),
        "cursor": format_cursor(latest),
        "sandbox": request.app[SETTINGS].dashboard_sandbox_url is not None,
        "statuses": list(STATUSES),
    })


async def get_project(request: web.Request) -> web.Response:
    """``GET /api/dashboard/projects/{id}``: one project, as in the list; 404 if unknown."""
    require_token(request)
    db = database(request)
    project = await read_project(db, request.match_info["project_id"])
    if project is None:
        raise ApiError(404, "no such project")
    [summary] = await summarize_projects(db, request.app[UPDATE_LOG], [project])
    return web.json_response({"project": summary})


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
    documents = await latest_entries(update_log, after, limit)
    journal = request.app[JOURNAL]
    if waits_for_journal(documents, journal, datetime.now(UTC)):
        await journal.wait_changed(JOURNAL_CATCH_UP_SECONDS)
    db = database(request)
    names, taken = await asyncio.gather(project_names(db, documents), callbacks_taken(db, documents))
    return web.json_response({
        "entries": [timeline_entry(document, names, taken, journal) for document in documents],
        "cursor": format_cursor(latest),
    })


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
