"""The notifier's aiohttp application: its resources as cleanup contexts (routes: :mod:`.routes`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import structlog
from aiohttp import web

from services.update_notifier.dashboard.journal import PostJournal, follow_system_posts
from services.update_notifier.dashboard.sandbox import sandbox_enabled, sandbox_session
from services.update_notifier.errors import json_errors
from services.update_notifier.fanout import DEFAULT_BOUND, Fanout, keepalive
from services.update_notifier.head import DEFAULT_HEAD_ENTRIES, HeadWindow
from services.update_notifier.keys import BROKER, FANOUT, HEAD, JOURNAL, SETTINGS, UPDATE_LOG
from services.update_notifier.payloads import MAX_BODY_BYTES
from services.update_notifier.recorder import recorder
from services.update_notifier.routes import setup_routes
from services.update_notifier.sse import KEEPALIVE, update_frame
from services.update_notifier.tailer import follow_log
from services.update_notifier.update_log import Entry, UpdateLog
from shared.broker import Broker
from shared.change_stream import stop_following
from shared.messages import ProjectUpdated
from shared.mongo import SYSTEM_POSTS, connect, ensure_indexes
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
    app[JOURNAL] = PostJournal()
    app.cleanup_ctx.append(keep_journal)
    if sandbox_enabled(app):
        app.cleanup_ctx.append(sandbox_session)
    # Open streams never end by themselves: end them first, or shutdown waits for them.
    app.on_shutdown.append(end_streams)
    setup_routes(app)
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
        await stop_following(*tasks)

    return follow


async def consume_updates(app: web.Application) -> AsyncIterator[None]:
    broker = app[BROKER]
    consumer = await broker.consume(broker.topology.notifier_queue, ProjectUpdated,
                                    recorder(app[UPDATE_LOG]))
    yield
    await consumer.stop()  # bounded even while the broker is down (see Consumer.stop)


async def keep_journal(app: web.Application) -> AsyncIterator[None]:
    """The dashboard's journal of system posts, from their change stream, while the app runs."""
    posts = app[UPDATE_LOG].entries.database[SYSTEM_POSTS]
    task = asyncio.create_task(follow_system_posts(app[JOURNAL], posts), name="dashboard journal")
    yield
    await stop_following(task)


async def end_streams(app: web.Application) -> None:
    app[FANOUT].close()
