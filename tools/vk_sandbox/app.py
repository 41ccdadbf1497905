"""The sandbox's aiohttp application."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from .api import handle_method
from .config import SandboxConfig
from .control_routes import control_errors, routes
from .delivery import Sleep
from .demo import seed_demo
from .sandbox import SANDBOX_KEY, Sandbox
from .wall_service import publish_postponed_posts

PUBLISHER_KEY = web.AppKey("postponed_publisher", asyncio.Task[None])


async def callback_sender(app: web.Application) -> AsyncIterator[None]:
    """The Callback API sender's HTTP client; in-flight deliveries are cancelled at exit."""
    dispatcher = app[SANDBOX_KEY].dispatcher
    await dispatcher.start()
    yield
    await dispatcher.close()


async def postponed_publisher(app: web.Application) -> AsyncIterator[None]:
    """Background task publishing scheduled posts when their time comes."""
    app[PUBLISHER_KEY] = asyncio.create_task(publish_postponed_posts(app[SANDBOX_KEY].walls))
    yield
    app[PUBLISHER_KEY].cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await app[PUBLISHER_KEY]


def init_app(config: SandboxConfig | None = None, *, sleep: Sleep = asyncio.sleep
             ) -> web.Application:
    """A ready-to-run sandbox; ``--demo`` state is seeded when ``config.demo``. ``sleep``
    takes the pauses between callback delivery retries (tests record them instead)."""
    config = config or SandboxConfig()
    sandbox = Sandbox.create(config, sleep=sleep)
    if config.demo:
        seed_demo(sandbox.state)
    app = web.Application(middlewares=[control_errors])
    app[SANDBOX_KEY] = sandbox
    app.router.add_route("GET", "/method/{method}", handle_method)
    app.router.add_route("POST", "/method/{method}", handle_method)
    app.router.add_routes(routes)
    app.cleanup_ctx.append(callback_sender)
    app.cleanup_ctx.append(postponed_publisher)
    return app
