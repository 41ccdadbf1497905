"""The notifier's aiohttp application: routes, and its resources as cleanup contexts."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import structlog
from aiohttp import web

from services.update_notifier.dashboard import setup_dashboard
from services.update_notifier.errors import json_errors
from services.update_notifier.fanout import DEFAULT_BOUND, Fanout, keepalive
from services.update_notifier.head import DEFAULT_HEAD_ENTRIES, HeadWindow
from services.update_notifier.keys import BROKER, FANOUT, HEAD, SETTINGS, UPDATE_LOG
from services.update_notifier.payloads import MAX_BODY_BYTES
from services.update_notifier.recorder import recorder
from services.update_notifier.sse import KEEPALIVE, update_frame
from services.update_notifier.stream import stream_updates
from services.update_notifier.tailer import follow_log
from services.update_notifier.update_log import Entry, UpdateLog
from services.update_notifier.views import get_updates, ready_check
from shared.broker import Broker
from shared.health import add_health_routes
from shared.messages import ProjectUpdated
from shared.mongo import connect, ensure_indexes
from shared.openapi import add_openapi_route
from shared.settings import Settings

log = structlog.get_logger(__name__)

KEEPALIVE_SECONDS = 15.0
CleanupContext = Callable[[web.Application], AsyncIterator[None]]


def init_app(settings: Settings, *, broker: Broker | None = None,
             keepalive_seconds: float = KEEPALIVE_SECONDS,
             stream_queue_bound: int = DEFAULT_BOUND,
             head_entries: int = DEFAULT_HEAD_ENTRIES) -> web.Application:
    """The notifier application; nothing is opened until it starts.

    Given a (connected) ``broker``, the application also consumes ``ProjectUpdated``
    from the notifier queue into the log while it runs, and ``/readyz`` checks the
    broker connection. Without one it only serves the log (tests, read-only replicas).
    ``head_entries``: how many of the latest seqs cursor polls are answered from memory.
    """
    app = web.Application(middlewares=[json_errors], client_max_size=MAX_BODY_BYTES)
    app[SETTINGS] = settings
    app[FANOUT] = Fanout(stream_queue_bound)
    app[HEAD] = HeadWindow(head_entries)
    app.cleanup_ctx.append(open_update_log)
    app.cleanup_ctx.append(live_updates(keepalive_seconds))
    if broker is not None:
        app[BROKER] = broker
        app.cleanup_ctx.append(consume_updates)
    # Open streams never end by themselves: end them first, or shutdown waits for them.
    app.on_shutdown.append(end_streams)
    app.router.add_post("/api/getUpdates", get_updates)
    app.router.add_get("/api/updates/stream", stream_updates)
    add_health_routes(app, ready_check(app), service="update_notifier")  # /healthz, /readyz, /metrics
    setup_dashboard(app)  # GET / (the live page) and /api/dashboard/*
    add_openapi_route(app)  # GET /openapi.yaml
    return app


async def open_update_log(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    client = connect(settings, "update_notifier")
    try:
        db = client[settings.mongo_db]
        await ensure_indexes(db, settings.updates_retention_seconds)
        update_log = UpdateLog(db)
        await update_log.prepare()
        app[UPDATE_LOG] = update_log
        yield
    finally:
        await client.close()


def live_updates(keepalive_seconds: float) -> CleanupContext:
    """Follow the log (one change stream) into the head window and the fan-out; tick keepalives."""

    async def follow(app: web.Application) -> AsyncIterator[None]:
        update_log, fanout, head = app[UPDATE_LOG], app[FANOUT], app[HEAD]

        def announce(entry: Entry) -> None:
            log.info("project_updated", project_id=entry.project_id, seq=entry.seq,
                     correlation_id=entry.correlation_id, streams=fanout.subscriber_count)
            fanout.publish(update_frame(entry))

        # Read before serving: every stream starts at or after this position, so the
        # follower covers all of them.
        start = await update_log.latest_seq()
        tasks = [asyncio.create_task(follow_log(update_log, announce, after=start, head=head)),
                 asyncio.create_task(keepalive(fanout, KEEPALIVE, keepalive_seconds))]
        yield
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return follow


async def consume_updates(app: web.Application) -> AsyncIterator[None]:
    broker = app[BROKER]
    consumer = await broker.consume(broker.topology.notifier_queue, ProjectUpdated,
                                    recorder(app[UPDATE_LOG]))
    yield
    await consumer.stop()  # bounded even while the broker is down (see Consumer.stop)


async def end_streams(app: web.Application) -> None:
    app[FANOUT].close()
