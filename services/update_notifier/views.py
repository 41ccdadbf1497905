"""Request handlers of the polling API, and the readiness check."""

from __future__ import annotations

import asyncio
import json

from aiohttp import web

from services.update_notifier.auth import is_authorized, presented_token
from services.update_notifier.cursor import format_cursor
from services.update_notifier.errors import ApiError
from services.update_notifier.keys import BROKER, HEAD, SETTINGS, UPDATE_LOG
from services.update_notifier.metrics import POLL_SECONDS
from services.update_notifier.payloads import (
    MAX_BODY_BYTES,
    BadRequest,
    GetUpdatesRequest,
    Legacy,
    Resume,
    StartChain,
    parse_get_updates,
)
from services.update_notifier.polling import CursorAhead, poll_after, poll_legacy
from shared.health import ReadyCheck

READINESS_TIMEOUT_SECONDS = 2.0
# Per mode, the histogram child (label lookups cost more than the observation).
POLL_TIMERS = {request_type: POLL_SECONDS.labels(mode=mode) for request_type, mode in (
    (Legacy, "legacy"), (StartChain, "start"), (Resume, "cursor"))}


def require_token(request: web.Request, *, allow_query_token: bool = False) -> None:
    """401 unless the request carries the configured bearer token (if one is configured)."""
    expected = request.app[SETTINGS].notifier_token
    query_token = request.query.get("access_token") if allow_query_token else None
    if not is_authorized(expected, presented_token(request.headers.get("Authorization"), query_token)):
        raise ApiError(401, "missing or wrong bearer token", {"WWW-Authenticate": "Bearer"})


async def read_body(request: web.Request, limit: int) -> bytes:
    """The whole body, or 413 as soon as it exceeds ``limit`` bytes (declared or streamed)."""
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, f"body exceeds {limit} bytes")
    body = bytearray()
    while chunk := await request.content.readany():
        body += chunk
        if len(body) > limit:
            raise ApiError(413, f"body exceeds {limit} bytes")
    return bytes(body)


async def get_updates(request: web.Request) -> web.Response:
    """``POST /api/getUpdates``: legacy (shared, cleared by the call) or cursor mode."""
    require_token(request)
    try:
        parsed = parse_get_updates(await read_body(request, MAX_BODY_BYTES))
    except BadRequest as exc:
        raise ApiError(400, str(exc)) from None
    with POLL_TIMERS[type(parsed)].time():
        return await _answer(request, parsed)


async def _answer(request: web.Request, parsed: GetUpdatesRequest) -> web.Response:
    update_log = request.app[UPDATE_LOG]
    match parsed:
        case Legacy():
            return web.json_response({"updatedProjectIds": await poll_legacy(update_log)})
        case StartChain():
            latest = await update_log.latest_seq()
            return web.json_response({"updatedProjectIds": [], "cursor": format_cursor(latest)})
        case Resume(after=after):
            try:
                poll = await poll_after(update_log, after, head=request.app[HEAD])
            except CursorAhead as exc:
                raise ApiError(400, str(exc)) from None
            answer: dict[str, object] = {"updatedProjectIds": poll.project_ids,
                                         "cursor": format_cursor(poll.cursor)}
            if poll.resync:
                answer["resync"] = True
            # What web.json_response sends, without its detour through str.
            return web.Response(body=json.dumps(answer).encode(), content_type="application/json",
                                charset="utf-8")


def ready_check(app: web.Application) -> ReadyCheck:
    """Ready when MongoDB answers and (if this app consumes) the broker connection is up."""

    async def check() -> bool:
        broker = app.get(BROKER)
        update_log = app.get(UPDATE_LOG)
        if update_log is None or (broker is not None and not broker.is_connected):
            return False
        try:
            async with asyncio.timeout(READINESS_TIMEOUT_SECONDS):
                await update_log.ping()
        except Exception:
            return False
        return True

    return check
