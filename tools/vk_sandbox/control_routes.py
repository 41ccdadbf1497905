"""``/_sandbox/``: the JSON control API tests, demos and the run command drive the sandbox with.

Client errors answer 400 (bad body), 404 (unknown community/post) or 409 (id taken),
with ``{"error": "..."}``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .attachments import parse_attachments
from .errors import VkApiError
from .faults import FAULT_ADAPTER
from .sandbox import SANDBOX_KEY, Sandbox
from .state import ConflictError, NotFoundError

CONTROL_PREFIX = "/_sandbox/"
routes = web.RouteTableDef()
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CommunityBody(_Body):
    group_id: int | None = Field(default=None, gt=0)
    name: str | None = None


class UserBody(_Body):
    user_id: int | None = Field(default=None, gt=0)
    admin_of: list[int] = Field(default_factory=list)


class PostBody(_Body):
    text: str = ""
    attachments: list[str] = Field(default_factory=list)
    publish_date: int | None = None
    post_type: Literal["post", "suggest"] = "post"
    repost: bool = False
    # Extensions: the author of a suggested post or repost, and which post a repost copies.
    from_id: int | None = None
    repost_of: int | None = None


class CallbackBody(_Body):
    group_id: int
    type: str
    object: dict[str, Any]


class CallbacksBody(_Body):
    events: list[CallbackBody]


class ConfigBody(_Body):
    retry_scale: float | None = Field(default=None, ge=0)
    user_requests_per_second: int | None = Field(default=None, ge=1)
    community_requests_per_second: int | None = Field(default=None, ge=1)
    delivery_timeout_seconds: float | None = Field(default=None, gt=0)


def _sandbox(request: web.Request) -> Sandbox:
    return request.app[SANDBOX_KEY]


def _client_error(status: int, message: str) -> web.HTTPException:
    error_class = {400: web.HTTPBadRequest, 404: web.HTTPNotFound, 409: web.HTTPConflict}[status]
    return error_class(text=json.dumps({"error": message}), content_type="application/json")


@web.middleware
async def control_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn domain errors of control handlers into JSON 4xx replies."""
    if not request.path.startswith(CONTROL_PREFIX):
        return await handler(request)
    try:
        return await handler(request)
    except (ValidationError, VkApiError, ValueError) as error:
        if isinstance(error, ConflictError):
            raise _client_error(409, str(error)) from error
        raise _client_error(400, str(error)) from error
    except NotFoundError as error:
        raise _client_error(404, str(error)) from error


async def _json(request: web.Request) -> Any:
    if not request.can_read_body:
        return {}
    try:
        return await request.json()
    except ValueError as error:
        raise _client_error(400, f"body is not JSON: {error}") from error


def _int_match(request: web.Request, name: str) -> int:
    try:
        return int(request.match_info[name])
    except ValueError:
        raise _client_error(404, f"{name} is not a number") from None


@routes.get("/_sandbox/health")
async def health(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


@routes.post("/_sandbox/communities")
async def create_community(request: web.Request) -> web.Response:
    body = CommunityBody.model_validate(await _json(request))
    community = _sandbox(request).state.create_community(body.group_id, body.name)
    return web.json_response({
        "group_id": community.group_id,
        "community_token": community.token,
        "name": community.name,
        "confirmation_code": community.confirmation_code,
    })


@routes.post("/_sandbox/users")
async def create_user(request: web.Request) -> web.Response:
    body = UserBody.model_validate(await _json(request))
    user = _sandbox(request).state.create_user(body.user_id, body.admin_of)
    return web.json_response({"user_id": user.user_id, "token": user.token,
                              "admin_of": sorted(user.admin_of)})


@routes.post("/_sandbox/communities/{group_id}/posts")
async def create_post(request: web.Request) -> web.Response:
    sandbox = _sandbox(request)
    community = sandbox.state.community(_int_match(request, "group_id"))
    body = PostBody.model_validate(await _json(request))
    if body.repost:
        repost = sandbox.walls.create_repost(
            community, text=body.text, from_id=body.from_id, original_id=body.repost_of)
        return web.json_response(repost)
    post = sandbox.walls.create_post(
        community,
        text=body.text,
        attachments=parse_attachments(body.attachments),
        publish_date=body.publish_date,
        suggest=body.post_type == "suggest",
        from_id=body.from_id,
    )
    return web.json_response(post.to_vk())


@routes.delete("/_sandbox/communities/{group_id}/posts/{post_id}")
async def delete_post(request: web.Request) -> web.Response:
    sandbox = _sandbox(request)
    community = sandbox.state.community(_int_match(request, "group_id"))
    post = sandbox.walls.delete_post(community, _int_match(request, "post_id"))
    return web.json_response(post.to_vk())


@routes.get("/_sandbox/communities/{group_id}/wall")
async def wall(request: web.Request) -> web.Response:
    community = _sandbox(request).state.community(_int_match(request, "group_id"))
    return web.json_response(community.wall.snapshot())


@routes.get("/_sandbox/calls")
async def calls(request: web.Request) -> web.Response:
    method = request.query.get("method")
    return web.json_response(
        {"calls": [call.to_json() for call in _sandbox(request).calls.calls(method)]})


@routes.delete("/_sandbox/calls")
async def clear_calls(request: web.Request) -> web.Response:
    _sandbox(request).calls.clear()
    return web.json_response({"ok": True})


@routes.get("/_sandbox/faults")
async def faults(request: web.Request) -> web.Response:
    return web.json_response({"faults": _sandbox(request).faults.to_json()})


@routes.post("/_sandbox/faults")
async def inject_fault(request: web.Request) -> web.Response:
    fault = FAULT_ADAPTER.validate_python(await _json(request))
    _sandbox(request).faults.add(fault)
    return web.json_response({"fault": fault.model_dump()})


@routes.delete("/_sandbox/faults")
async def clear_faults(request: web.Request) -> web.Response:
    _sandbox(request).faults.clear()
    return web.json_response({"ok": True})


@routes.get("/_sandbox/deliveries")
async def deliveries(request: web.Request) -> web.Response:
    group_id = request.query.get("group_id")
    found = _sandbox(request).deliveries.deliveries(
        event_id=request.query.get("event_id"),
        event_type=request.query.get("type"),
        group_id=int(group_id) if group_id else None,
    )
    return web.json_response({"deliveries": [delivery.to_json() for delivery in found]})


@routes.delete("/_sandbox/deliveries")
async def clear_deliveries(request: web.Request) -> web.Response:
    _sandbox(request).deliveries.clear()
    return web.json_response({"ok": True})


@routes.post("/_sandbox/callbacks")
async def send_callbacks(request: web.Request) -> web.Response:
    sandbox = _sandbox(request)
    raw = await _json(request)
    if isinstance(raw, dict) and "events" in raw:
        events = CallbacksBody.model_validate(raw).events
        for event in events:
            sandbox.state.community(event.group_id)  # all or nothing
        event_ids = [sandbox.dispatcher.emit(e.group_id, e.type, e.object) for e in events]
        return web.json_response({"event_ids": event_ids})
    event = CallbackBody.model_validate(raw)
    sandbox.state.community(event.group_id)
    return web.json_response(
        {"event_id": sandbox.dispatcher.emit(event.group_id, event.type, event.object)})


def _config_json(sandbox: Sandbox) -> dict[str, Any]:
    config = sandbox.config
    return {
        "retry_scale": config.retry_scale,
        "user_requests_per_second": config.user_requests_per_second,
        "community_requests_per_second": config.community_requests_per_second,
        "delivery_timeout_seconds": config.delivery_timeout_seconds,
    }


@routes.get("/_sandbox/config")
async def get_config(request: web.Request) -> web.Response:
    return web.json_response(_config_json(_sandbox(request)))


@routes.post("/_sandbox/config")
async def set_config(request: web.Request) -> web.Response:
    sandbox = _sandbox(request)
    body = ConfigBody.model_validate(await _json(request))
    for name, value in body.model_dump(exclude_none=True).items():
        setattr(sandbox.config, name, value)
    return web.json_response(_config_json(sandbox))
