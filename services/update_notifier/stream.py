"""``GET /api/updates/stream``: the update log as Server-Sent Events.

Where a stream starts:

* ``Last-Event-ID`` (a reconnecting ``EventSource``) wins, then ``?cursor=``:
  replay the log after it, then go live. A ``Last-Event-ID`` the log cannot
  continue (expired, unknown, from a reset log) gets an ``event: resync`` rather
  than an error, which would stop the ``EventSource`` for good; a bad ``?cursor=``
  is the caller's bug and gets 400.
* neither: ``event: ready`` carrying the current cursor, then live.

The stream subscribes to the process's fan-out *before* reading the log, so an
update appended meanwhile arrives twice rather than never; frames at or below
the last seq sent are dropped.
"""

from __future__ import annotations

import structlog
from aiohttp import web
from pymongo.errors import PyMongoError

from services.update_notifier.cursor import CursorVerdict, InvalidCursor, classify, has_gap, parse_cursor
from services.update_notifier.errors import ApiError
from services.update_notifier.fanout import Frame
from services.update_notifier.keys import FANOUT, UPDATE_LOG
from services.update_notifier.metrics import OPEN_STREAMS
from services.update_notifier.sse import ready_frame, resync_frame, update_frame
from services.update_notifier.update_log import UpdateLog
from services.update_notifier.views import require_token
from shared.logging import redact_text

log = structlog.get_logger(__name__)

REPLAY_PAGE = 500
SSE_HEADERS = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",  # tell reverse proxies not to buffer the stream
}
_UNUSABLE = -1  # a Last-Event-ID that is no cursor of ours: resync


def requested_start(last_event_id: str | None, query_cursor: str | None) -> int | None:
    """The seq to resume after, None for a fresh stream, or ``_UNUSABLE``."""
    if last_event_id:
        try:
            return parse_cursor(last_event_id)
        except InvalidCursor:
            return _UNUSABLE
    if query_cursor:
        try:
            return parse_cursor(query_cursor)
        except InvalidCursor as exc:
            raise ApiError(400, str(exc)) from None
    return None


async def stream_updates(request: web.Request) -> web.StreamResponse:
    require_token(request, allow_query_token=True)
    update_log = request.app[UPDATE_LOG]
    fanout = request.app[FANOUT]
    from_header = bool(request.headers.get("Last-Event-ID"))
    start = requested_start(request.headers.get("Last-Event-ID"), request.query.get("cursor"))

    transport = request.transport
    subscription = fanout.subscribe(transport.abort if transport is not None else _nothing)
    response = web.StreamResponse(headers=SSE_HEADERS)
    OPEN_STREAMS.inc()
    try:
        latest = await update_log.latest_seq()
        first: Frame | None = None
        if start is None:
            first, last_sent = ready_frame(latest), latest
        else:
            oldest = await update_log.oldest_seq() if 0 <= start < latest else None
            verdict = CursorVerdict.INVALID if start == _UNUSABLE else classify(
                start, oldest=oldest, latest=latest)
            if verdict is CursorVerdict.INVALID and not from_header:
                raise ApiError(400, "cursor is ahead of the update log")
            if verdict is CursorVerdict.OK:
                last_sent = start
            else:
                first, last_sent = resync_frame(latest), latest
        await response.prepare(request)
        if first is not None:
            await response.write(first.data)
        last_sent = await _replay(update_log, response, last_sent)
        while (frame := await subscription.next()) is not None:
            if frame.seq is not None:
                if frame.seq <= last_sent:
                    continue
                last_sent = frame.seq
            await response.write(frame.data)
    except ConnectionResetError:
        pass  # the client left, or was cut off for being too slow: it reconnects and resumes
    except PyMongoError as exc:
        if not response.prepared:
            raise
        log.warning("stream_storage_failed", error=redact_text(f"{type(exc).__name__}: {exc}"))
    finally:
        fanout.unsubscribe(subscription)
        OPEN_STREAMS.dec()
    return response


async def _replay(update_log: UpdateLog, response: web.StreamResponse, after: int) -> int:
    """Send the logged entries after ``after``; return the last seq sent."""
    while True:
        entries = await update_log.entries_after(after, REPLAY_PAGE)
        if has_gap(after, [entry.seq for entry in entries]):
            # Expired under our feet: the client must reload, then follow from now.
            latest = await update_log.latest_seq()
            await response.write(resync_frame(latest).data)
            return latest
        for entry in entries:
            await response.write(update_frame(entry).data)
            after = entry.seq
        if len(entries) < REPLAY_PAGE:
            return after


def _nothing() -> None:
    return None
