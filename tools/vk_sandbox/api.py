"""``/method/{name}``: VK's API endpoint, with VK's checks, errors, rate limits and faults.

A request passes, in order: injected latency, injected HTTP-level faults, method
lookup (3), injected VK errors, the token (5), the version (8), the rate limit (6),
then the method itself. Only requests that reach the method count against the
rate limit; ``execute`` counts once however many calls it makes.
"""

from __future__ import annotations

import asyncio
import json
import time
from functools import partial
from typing import Any

from aiohttp import web

from .accounts import Caller, TokenKind
from .call_log import ApiCall
from .callback_methods import CALLBACK_METHODS
from .errors import (
    AUTH_FAILED,
    DETAIL_INVALID_TOKEN,
    DETAIL_NO_TOKEN,
    DETAIL_NO_VERSION,
    INVALID_REQUEST,
    TOO_MANY_REQUESTS,
    UNKNOWN_METHOD,
    VkApiError,
)
from .execute_code import parse_execute_code
from .method_call import MethodCall, MethodHandler
from .params import Params
from .sandbox import SANDBOX_KEY, Sandbox
from .wall_methods import WALL_METHODS

METHODS: dict[str, MethodHandler] = {**WALL_METHODS, **CALLBACK_METHODS}
EXECUTE = "execute"

_dumps = partial(json.dumps, ensure_ascii=False)
# What a broken proxy in front of VK answers: not JSON at all.
_HTTP_FAULT_BODY = "<html><head><title>{status}</title></head><body>nginx</body></html>"
# A JSON body cut short, as when a connection drops mid-reply.
_MALFORMED_BODY = '{"response": {"count": 1, "items": [{"id": 1, "text": "cut sh'


def error_body(
    error: VkApiError, method: str, token: str | None, params: dict[str, str]
) -> dict[str, Any]:
    """VK's error reply. ``request_params`` echoes the request, never the access token."""
    request_params = [{"key": "method", "value": method}]
    if token:
        request_params.append({"key": "oauth", "value": "1"})
    request_params += [{"key": key, "value": value} for key, value in params.items()]
    details: dict[str, Any] = {
        # The schema's base_error requires this discriminator.
        "inner_type": "base_error",
        "error_code": error.code,
        "error_msg": error.message,
        "request_params": request_params,
    }
    if error.code == 14:  # captcha: VK says where to get one
        details["captcha_sid"] = "sandbox"
        details["captcha_img"] = "https://api.vk.com/captcha.php?sid=sandbox"
    return {"error": details}


async def _request_values(request: web.Request) -> dict[str, str]:
    values = {key: str(value) for key, value in request.query.items()}
    if request.method == "POST" and request.can_read_body:
        form = await request.post()
        values.update({key: str(value) for key, value in form.items()})
    return values


def _caller(sandbox: Sandbox, token: str | None) -> Caller:
    if not token:
        raise VkApiError(AUTH_FAILED, DETAIL_NO_TOKEN)
    caller = sandbox.state.caller(token)
    if caller is None:
        raise VkApiError(AUTH_FAILED, DETAIL_INVALID_TOKEN)
    return caller


def _admit(sandbox: Sandbox, caller: Caller) -> None:
    config = sandbox.config
    limit = (config.user_requests_per_second if caller.kind is TokenKind.USER
             else config.community_requests_per_second)
    if not sandbox.rate_limiter.admit(caller.token, limit, config.rate_window_seconds):
        raise VkApiError(TOO_MANY_REQUESTS)


def _execute(sandbox: Sandbox, caller: Caller, params: Params) -> tuple[Any, list[dict[str, Any]]]:
    """Run an ``execute`` code: (response, execute_errors)."""
    program = parse_execute_code(params.required_text("code"))
    results: list[Any] = []
    errors: list[dict[str, Any]] = []
    for inner in program.calls:
        call = sandbox.calls.record(ApiCall(
            method=inner.method, token_kind=str(caller.kind), params=dict(inner.params),
            at=time.time(), via_execute=True,
        ))
        try:
            handler = METHODS.get(inner.method)
            if handler is None:
                raise VkApiError(UNKNOWN_METHOD)
            if (code := sandbox.faults.take_error(inner.method)) is not None:
                raise VkApiError(code)
            results.append(handler(MethodCall(sandbox, caller, Params(inner.params))))
        except VkApiError as error:
            call.error_code = error.code
            results.append(False)
            errors.append(
                {"method": inner.method, "error_code": error.code, "error_msg": error.message})
    return (results if program.returns_list else results[0]), errors


async def handle_method(request: web.Request) -> web.StreamResponse:
    sandbox = request.app[SANDBOX_KEY]
    method = request.match_info["method"]
    values = await _request_values(request)
    token = values.pop("access_token", None)
    call = sandbox.calls.record(ApiCall(
        method=method, token_kind=str(sandbox.state.token_kind(token)), params=dict(values),
        at=time.time(),
    ))
    if latency := sandbox.faults.latency(method):
        await asyncio.sleep(latency)
    if (status := sandbox.faults.take_http_status(method)) is not None:
        call.http_status = status
        return web.Response(status=status, text=_HTTP_FAULT_BODY.format(status=status),
                            content_type="text/html")
    if sandbox.faults.take_malformed(method):
        return web.Response(text=_MALFORMED_BODY, content_type="application/json")
    body: dict[str, Any]
    try:
        if method != EXECUTE and method not in METHODS:
            raise VkApiError(UNKNOWN_METHOD)
        if (code := sandbox.faults.take_error(method)) is not None:
            raise VkApiError(code)
        caller = _caller(sandbox, token)
        params = Params(values)
        if "v" not in params:
            raise VkApiError(INVALID_REQUEST, DETAIL_NO_VERSION)
        _admit(sandbox, caller)
        if method == EXECUTE:
            response, execute_errors = _execute(sandbox, caller, params)
            body = {"response": response}
            if execute_errors:
                body["execute_errors"] = execute_errors
        else:
            body = {"response": METHODS[method](MethodCall(sandbox, caller, params))}
    except VkApiError as error:
        call.error_code = error.code
        body = error_body(error, method, token, values)
    return web.json_response(body, dumps=_dumps)
