"""Run a service: settings, logging, signal handling, a ``ready`` line, clean stop.

A service is described by its *lifespan*: an async context manager that starts
everything the service owns, yields while it runs, and releases it all on exit.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Coroutine
from contextlib import AbstractAsyncContextManager
from typing import Any

import structlog
import uvloop

from shared.logging import configure_logging
from shared.settings import Settings, load_settings

Lifespan = Callable[[Settings], AbstractAsyncContextManager[None]]

# Listen backlog of the HTTP services (aiohttp's default is 128). VK and browsers open
# connections in bursts (thousands of SSE clients reconnecting after a deploy); a full
# accept queue drops SYNs, and the client's retransmit comes a whole second later.
LISTEN_BACKLOG = 1024

log = structlog.get_logger(__name__)


async def serve_until_signalled(service: str, settings: Settings, lifespan: Lifespan) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with lifespan(settings):
        log.info("ready", service=service)
        await stop.wait()
        log.info("stopping", service=service)
    log.info("stopped", service=service)


def run_loop(main: Coroutine[Any, Any, None]) -> None:
    """Run ``main`` on uvloop: the event loop of every service (and of the benchmarks'
    bare baseline). It cut the gateway's CPU per callback (bench/gateway.py)."""
    uvloop.run(main)


def run_service(service: str, lifespan: Lifespan) -> None:
    """Entry point of ``python -m services.<name>``."""
    settings = load_settings()
    configure_logging(settings, service)
    try:
        run_loop(serve_until_signalled(service, settings, lifespan))
    except Exception as exc:
        log.error("startup_failed", service=service, error=f"{type(exc).__name__}: {exc}")
        raise SystemExit(1) from None
