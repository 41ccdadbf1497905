"""The gateway's aiohttp application: ``POST /api/callback``.

VK's delivery contract drives every answer:

* ``confirmation``            → 200, the community's confirmation code (404 if unknown).
* a secret no project of the
  community holds             → 403, nothing published (:mod:`.addressing`).
* unknown community           → 200 ``ok`` and dropped (VK would retry forever).
* any other event             → published with confirms, one event per project the
                                secret addresses, *then* 200 ``ok`` (events arriving
                                together share a confirm: :mod:`.group_commit`).
* broker down / no confirm    → 503 (+ ``Retry-After`` on the first try, see
                                :mod:`.retry_after`) to every event of the batch:
                                VK retries, nothing is lost.
* malformed body              → 400; over the size limit → 413. Never a 500.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import structlog
from aiohttp import web
from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError

from services.callback_gateway import metrics
from services.callback_gateway.addressing import confirmation_answer
from services.callback_gateway.group_commit import GroupCommit
from services.callback_gateway.parsing import CONFIRMATION, BadCallback, Callback, parse_callback
from services.callback_gateway.projects import (
    KEY_CHANGES,
    STREAM_DOWN_FORGET_SECONDS,
    STREAM_RETRY_SECONDS,
    ProjectDirectory,
)
from services.callback_gateway.retry_after import retry_after_header
from shared.broker import Broker, PublishFailed
from shared.change_stream import stop_following
from shared.change_wakeup import ChangeWakeup
from shared.health import add_health_routes, dependencies_ready
from shared.messages import callback_event_json, new_correlation_id
from shared.mongo import PROJECTS, Document, connect, ensure_indexes
from shared.openapi import add_openapi_route
from shared.settings import Settings
from shared.topology import Topology

log = structlog.get_logger(__name__)

SETTINGS = web.AppKey("settings", Settings)
BROKER = web.AppKey("broker", Broker)
DIRECTORY = web.AppKey("directory", ProjectDirectory)
COMMITS = web.AppKey("commits", GroupCommit)
MONGO = web.AppKey("mongo", AsyncMongoClient[Document])

def plain(text: str, status: int = 200, **headers: str) -> web.Response:
    return web.Response(text=text, status=status, content_type="text/plain", charset="utf-8",
                        headers=headers)


async def handle_callback(request: web.Request) -> web.Response:
    started = time.perf_counter()
    settings = request.app[SETTINGS]
    if request.headers.get("Content-Encoding", "identity").strip().lower() not in ("", "identity"):
        # VK posts plain JSON. Refused before reading: aiohttp's decoding of a broken
        # body can leave the read waiting forever (a truncated deflate stream).
        metrics.count(None, "malformed")
        return plain("bad request: Content-Encoding is not supported", 400)
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        metrics.count(None, "too_large")
        return plain(f"body larger than {settings.gateway_max_body_bytes} bytes", 413)
    except web.RequestPayloadError:  # e.g. a Content-Encoding the body does not decode as
        metrics.count(None, "malformed")
        return plain("bad request: body could not be read", 400)
    try:
        callback = parse_callback(body)
    except BadCallback as exc:
        metrics.count(None, "malformed")
        return plain(f"bad request: {exc}", 400)

    retry_header = request.headers.get("X-Retry-Counter", "")
    retry_counter = int(retry_header) if retry_header.isdigit() else None
    correlation_id = new_correlation_id()
    try:
        lookup = await request.app[DIRECTORY].lookup(callback.group_id, callback.secret)
    except PyMongoError as exc:
        log.warning("project_lookup_failed", error=type(exc).__name__,
                    **_context(correlation_id, callback))
        metrics.count(callback.type, "unavailable")
        return plain("temporarily unavailable", 503, **retry_after_header(retry_counter))

    if callback.type == CONFIRMATION:
        answer = confirmation_answer(lookup.projects, callback.secret)
        if answer.code is None:
            metrics.count(callback.type, "unknown_group")
            return plain("unknown community", 404)
        if answer.disagreeing:
            log.warning("confirmation_codes_disagree", project_ids=list(answer.disagreeing),
                        **_context(correlation_id, callback))
        metrics.count(callback.type, "confirmed")
        return plain(answer.code)

    if not lookup.projects:
        log.info("callback_dropped_unknown_group", **_context(correlation_id, callback))
        metrics.count(callback.type, "unknown_group")
        return plain("ok")
    if not lookup.addressed:
        # Logged only when MongoDB confirmed it: a flood answered from the cache is
        # counted (per community), not written line by line.
        if lookup.read_now:
            log.warning("callback_bad_secret", secret_present=callback.secret is not None,
                        **_context(correlation_id, callback))
        metrics.count(callback.type, "bad_secret")
        metrics.count_bad_secret(callback.group_id, checked=lookup.read_now)
        return plain("bad secret", 403)

    # One event per project the request is for; each is deduplicated per project.
    events = [callback_event_json(
        correlation_id=correlation_id, type=callback.type, group_id=callback.group_id,
        event_id=callback.event_id, v=callback.v, object_json=callback.object_json,
        project_id=project.project_id, received_at=datetime.now(UTC),
        retry_counter=retry_counter,
    ) for project in lookup.addressed]
    project_ids = [project.project_id for project in lookup.addressed]
    try:
        await request.app[COMMITS].commit(correlation_id, *events)
    except PublishFailed as exc:
        log.warning("callback_not_stored", project_ids=project_ids, error=str(exc),
                    **_context(correlation_id, callback))
        metrics.count(callback.type, "unavailable")
        return plain("temporarily unavailable", 503, **retry_after_header(retry_counter))
    # DEBUG, not INFO: one line per callback was 8-27 % of the gateway's CPU (bench/gateway.py);
    # the refresher's ``refresh_requested`` carries the same correlation and event ids.
    log.debug("callback_accepted", project_ids=project_ids, retry_counter=retry_counter,
              **_context(correlation_id, callback))
    metrics.count(callback.type, "accepted")
    metrics.ACK_SECONDS.observe(time.perf_counter() - started)
    return plain("ok")


def _context(correlation_id: str, callback: Callback) -> dict[str, object]:
    """What every log line about a callback carries (built only for a line written)."""
    return {"correlation_id": correlation_id, "group_id": callback.group_id,
            "event_type": callback.type, "event_id": callback.event_id}


def init_app(settings: Settings) -> web.Application:
    """The gateway app; MongoDB and the broker are opened and closed with it."""
    app = web.Application(client_max_size=settings.gateway_max_body_bytes)
    app[SETTINGS] = settings
    app.cleanup_ctx.append(_resources)
    app.router.add_post("/api/callback", handle_callback)
    add_health_routes(app, dependencies_ready(lambda: app.get(BROKER), lambda: app.get(MONGO)),
                      service="callback_gateway")
    add_openapi_route(app)  # GET /openapi.yaml
    return app


async def _resources(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    client = connect(settings, "callback_gateway")
    db = client[settings.mongo_db]
    await ensure_indexes(db, settings.updates_retention_seconds)
    broker = Broker(str(settings.amqp_url), Topology(settings.amqp_prefix),
                    client_name="callback_gateway")
    await broker.connect()
    app[BROKER] = broker
    app[MONGO] = client
    directory = ProjectDirectory(db[PROJECTS], settings.gateway_project_cache_seconds,
                                 settings.gateway_refusal_cache_seconds)
    app[DIRECTORY] = directory
    key_changes = ChangeWakeup(db[PROJECTS], directory.forget,
                               poll_seconds=STREAM_DOWN_FORGET_SECONDS,
                               retry_seconds=STREAM_RETRY_SECONDS, pipeline=KEY_CHANGES)
    watcher = asyncio.create_task(key_changes.run(), name="gateway project changes")

    async def publish(events: list[bytes], correlation_id: str) -> None:
        await broker.publish_callbacks(events, correlation_id=correlation_id,
                                       timeout=settings.gateway_publish_timeout_seconds)

    commits = GroupCommit(publish, max_events=settings.gateway_batch_max_events,
                          max_bytes=settings.gateway_batch_max_bytes)
    app[COMMITS] = commits
    yield
    await commits.close()
    await stop_following(watcher)
    await broker.close()
    await client.close()
