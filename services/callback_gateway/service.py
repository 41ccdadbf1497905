"""The gateway's process: the app (:mod:`.app`) served on ``GATEWAY_HOST:GATEWAY_PORT``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from aiohttp import web

from services.callback_gateway.app import init_app
from shared.service import LISTEN_BACKLOG
from shared.settings import Settings

log = structlog.get_logger(__name__)

SERVICE = "callback_gateway"


@asynccontextmanager
async def lifespan(settings: Settings) -> AsyncIterator[None]:
    runner = web.AppRunner(init_app(settings), access_log=None, handle_signals=False)
    await runner.setup()
    # Several workers (GATEWAY_WORKERS, workers.py) listen on the same port.
    site = web.TCPSite(runner, settings.gateway_host, settings.gateway_port,
                       backlog=LISTEN_BACKLOG, reuse_port=settings.gateway_workers > 1)
    await site.start()
    log.info("listening", host=settings.gateway_host, port=settings.gateway_port)
    try:
        yield
    finally:
        await runner.cleanup()
