"""Sandbox mode only (``DASHBOARD_SANDBOX_URL`` set): the dashboard's buttons.

``POST /api/dashboard/sandbox/scheduled-post {"project_id"}`` creates a post an hour
ahead in the project's sandbox community (proxied to the sandbox's control API, so the
browser never talks cross-origin); ``POST /api/dashboard/sandbox/system-post
{"project_id", "delay_seconds"?}`` inserts a ``pending_publication`` system post due in
``delay_seconds`` (default 10). Never enabled in production: they write ``system_posts``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import structlog
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.update_notifier.dashboard.values import group_id, int_or_none, iso
from services.update_notifier.dashboard.views import database
from services.update_notifier.errors import ApiError
from services.update_notifier.keys import SANDBOX_SESSION, SETTINGS
from services.update_notifier.views import read_body, require_token
from shared.documents import PostStatus
from shared.mongo import PROJECTS, SYSTEM_POSTS, Document

log = structlog.get_logger(__name__)

SANDBOX_TIMEOUT_SECONDS = 5.0
SANDBOX_SCHEDULE_AHEAD_SECONDS = 3600
SYSTEM_POST_DEFAULT_DELAY_SECONDS = 10.0
BODY_LIMIT_BYTES = 4096


class _ProjectBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    project_id: str = Field(min_length=1, max_length=200)


class _SystemPostBody(_ProjectBody):
    delay_seconds: float = Field(default=SYSTEM_POST_DEFAULT_DELAY_SECONDS, ge=0, le=86400)


def sandbox_enabled(app: web.Application) -> bool:
    return app[SETTINGS].dashboard_sandbox_url is not None


async def sandbox_session(app: web.Application) -> AsyncIterator[None]:
    """The HTTP session to the sandbox's control API (cleanup context, sandbox mode only)."""
    timeout = aiohttp.ClientTimeout(total=SANDBOX_TIMEOUT_SECONDS)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        app[SANDBOX_SESSION] = session
        yield


async def create_scheduled_post(request: web.Request) -> web.Response:
    """Sandbox mode: a post an hour ahead in the project's community (VK then calls back)."""
    require_token(request)
    body: _ProjectBody = await _parse(request, _ProjectBody)
    project = await _sandbox_project(request, body.project_id)
    community = group_id(project)
    if community is None or community <= 0:
        raise ApiError(409, "project has no valid vk_group_id")
    sandbox_url = str(request.app[SETTINGS].dashboard_sandbox_url).rstrip("/")
    publish_date = int(time.time()) + SANDBOX_SCHEDULE_AHEAD_SECONDS
    text = f"Dashboard scheduled post {datetime.now(UTC):%H:%M:%S} UTC"
    url = f"{sandbox_url}/_sandbox/communities/{community}/posts"
    try:
        async with request.app[SANDBOX_SESSION].post(
                url, json={"text": text, "publish_date": publish_date}) as response:
            payload = await response.json(content_type=None)
            if response.status >= 400:
                message = payload.get("error") if isinstance(payload, dict) else payload
                raise ApiError(502, f"sandbox answered {response.status}: {message}")
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise ApiError(502, f"sandbox unreachable: {type(exc).__name__}") from None
    post_id = int_or_none(payload.get("id")) if isinstance(payload, dict) else None
    log.info("dashboard_sandbox_post_created", project_id=body.project_id, group_id=community,
             vk_post_id=post_id)
    return web.json_response({"ok": True, "post": {
        "id": post_id, "text": text,
        "publishDate": iso(datetime.fromtimestamp(publish_date, UTC))}})


async def create_system_post(request: web.Request) -> web.Response:
    """Sandbox mode: a ``pending_publication`` system post due in ``delay_seconds``."""
    require_token(request)
    body: _SystemPostBody = await _parse(request, _SystemPostBody)
    await _sandbox_project(request, body.project_id)
    now = datetime.now(UTC)
    publication_date = now + timedelta(seconds=body.delay_seconds)
    text = f"Dashboard system post {now:%H:%M:%S} UTC"
    result = await database(request)[SYSTEM_POSTS].insert_one({
        "project_id": body.project_id, "text": text, "attachments": [],
        "publication_date": publication_date, "status": PostStatus.PENDING,
        "vk_post_id": None, "error": None,
    })
    log.info("dashboard_system_post_created", project_id=body.project_id,
             post_id=str(result.inserted_id), publication_date=iso(publication_date))
    return web.json_response({"ok": True, "post": {
        "id": str(result.inserted_id), "text": text, "status": PostStatus.PENDING,
        "publicationDate": iso(publication_date)}})


async def _parse(request: web.Request, model: type[_ProjectBody]) -> Any:
    try:
        return model.model_validate_json(await read_body(request, BODY_LIMIT_BYTES))
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise ApiError(400, " ".join(f"{where}: {first['msg']}".split())) from None


async def _sandbox_project(request: web.Request, project_id: str) -> Document:
    project = await database(request)[PROJECTS].find_one({"_id": project_id},
                                                          {"name": True, "vk_group_id": True})
    if project is None:
        raise ApiError(404, "no such project")
    return project
