"""Health, readiness and metrics endpoints, for HTTP services and consumers alike.

``/healthz``: the process is alive. ``/readyz``: its broker and database are
reachable (503 otherwise). ``/metrics``: Prometheus text format — of every process
of the service when several share a port (``PROMETHEUS_MULTIPROC_DIR`` set, e.g.
``GATEWAY_WORKERS``), else of this process — with the readiness of the moment as
``backbone_service_ready{service=…}`` (so "no ready instance of a service" is an alert,
not only a probe result).
HTTP services mount these on their own app; consumers serve them on a small side
port (``HEALTH_PORT``; 0 disables it).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import structlog
from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Gauge,
    generate_latest,
    multiprocess,
)
from pymongo import AsyncMongoClient

from shared.broker import Broker
from shared.mongo import Document

ReadyCheck = Callable[[], Awaitable[bool]]

log = structlog.get_logger(__name__)

SERVICE_READY = Gauge("backbone_service_ready",
                      "1 while the process's broker and database are reachable (its /readyz "
                      "answers 200), else 0; set on every /readyz and /metrics request",
                      ["service"], multiprocess_mode="liveall")


def dependencies_ready(broker: Callable[[], Broker | None],
                       mongo: Callable[[], AsyncMongoClient[Document] | None]) -> ReadyCheck:
    """Ready when the broker connection is open and MongoDB answers a ping within 1 s."""
    async def check() -> bool:
        current_broker, client = broker(), mongo()
        if current_broker is None or client is None or not current_broker.is_connected:
            return False
        try:
            async with asyncio.timeout(1):
                await client.admin.command("ping")
        except Exception:
            return False
        return True
    return check


async def _healthz(_request: web.Request) -> web.Response:
    return web.Response(text="ok", content_type="text/plain")


def _registry() -> CollectorRegistry:
    if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # sums the workers' files
    return registry


def add_health_routes(app: web.Application, ready: ReadyCheck, *, service: str) -> None:
    ready_gauge = SERVICE_READY.labels(service=service)

    async def is_ready() -> bool:
        answer = await ready()
        ready_gauge.set(1 if answer else 0)
        return answer

    async def readyz(_request: web.Request) -> web.Response:
        if await is_ready():
            return web.Response(text="ready", content_type="text/plain")
        return web.Response(text="not ready", status=503, content_type="text/plain")

    async def metrics(_request: web.Request) -> web.Response:
        await is_ready()
        response = web.Response(body=generate_latest(_registry()))
        response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
        return response

    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)


@asynccontextmanager
async def health_server(host: str, port: int, ready: ReadyCheck, *, service: str
                        ) -> AsyncIterator[None]:
    """Serve the three endpoints on a side port while the block runs (port 0: off)."""
    if port == 0:
        yield
        return
    app = web.Application()
    add_health_routes(app, ready, service=service)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    log.info("health_listening", port=port)
    try:
        yield
    finally:
        await runner.cleanup()
