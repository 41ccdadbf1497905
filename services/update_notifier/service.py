"""The service: its name and its lifespan (the broker, then the HTTP application of
:func:`~services.update_notifier.app.init_app`, which opens MongoDB and consumes)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from aiohttp import web

from services.update_notifier.app import init_app
from shared.broker import Broker
from shared.service import LISTEN_BACKLOG
from shared.settings import Settings
from shared.topology import Topology

SERVICE = "update_notifier"
# Streams are ended on shutdown; this bounds the wait for in-flight polls.
SHUTDOWN_TIMEOUT_SECONDS = 5.0

log = structlog.get_logger(__name__)


@asynccontextmanager
async def lifespan(settings: Settings) -> AsyncIterator[None]:
    """Serve on ``NOTIFIER_HOST:NOTIFIER_PORT`` and consume updates until the block exits."""
    broker = Broker(str(settings.amqp_url), Topology(settings.amqp_prefix), client_name=SERVICE)
    await broker.connect()
    try:
        # No access log: the stream's URL may carry ?access_token=.
        runner = web.AppRunner(init_app(settings, broker=broker), access_log=None,
                               shutdown_timeout=SHUTDOWN_TIMEOUT_SECONDS)
        await runner.setup()
        try:
            site = web.TCPSite(runner, settings.notifier_host, settings.notifier_port,
                               backlog=LISTEN_BACKLOG)
            await site.start()
            log.info("listening", host=settings.notifier_host, port=settings.notifier_port)
            yield
        finally:
            await runner.cleanup()
    finally:
        await broker.close()
