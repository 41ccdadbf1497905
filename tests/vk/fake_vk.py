"""A small VK API stand-in on real HTTP (127.0.0.1) for the client's tests.

Stand-in until ``tools.vk_sandbox`` is usable here. It answers ``POST
/method/{method}`` like VK: form-encoded requests, ``{"response": ...}`` or
``{"error": {...}}`` (echoing ``request_params``, the token included, so the client
must drop it). It enforces VK's per-token rate limit (3/s user, 20/s community,
error 6) and takes injected faults shaped like the sandbox's ``/_sandbox/faults``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import secrets
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from shared.vk.tokens import TokenKind


class FakeVkError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Fault:
    """As the sandbox's: ``error`` (code), ``http_status`` (status), ``latency``
    (seconds, every call), ``malformed``; ``count`` calls of ``method`` (None: any).
    ``message`` replaces an error's text; ``{token}`` in it becomes the caller's token."""

    kind: str
    method: str | None = None
    code: int = 0
    status: int = 0
    seconds: float = 0.0
    count: int = 1
    message: str | None = None

    def matches(self, method: str) -> bool:
        return self.method in (None, method)


@dataclass
class RecordedCall:
    method: str
    at: float  # time.monotonic() when the request arrived
    params: dict[str, str]  # without access_token
    token_kind: TokenKind | None
    content_type: str
    error_code: int | None = None
    http_status: int = 200


@dataclass
class Wall:
    posts: list[dict[str, Any]] = field(default_factory=list)  # newest first
    next_id: itertools.count[int] = field(default_factory=lambda: itertools.count(1))


_EXECUTE_CALL = re.compile(r"API\.([a-z]+\.[A-Za-z]+)\(")


class FakeVk:
    """State, faults and call log of one fake VK; :meth:`running` serves it."""

    def __init__(self, *, user_rps: int = 3, community_rps: int = 20,
                 window_seconds: float = 1.0) -> None:
        self.limits = {TokenKind.USER: user_rps, TokenKind.COMMUNITY: community_rps}
        self.window_seconds = window_seconds
        self.api_url = ""  # set by whoever serves it
        self.tokens: dict[str, tuple[TokenKind, int | None]] = {}
        self.faults: list[Fault] = []
        self.calls: list[RecordedCall] = []
        self.walls: dict[int, Wall] = {}
        self.callback_servers: dict[int, dict[int, dict[str, Any]]] = {}
        self.callback_settings: dict[tuple[int, int], dict[str, str]] = {}
        self._admitted: dict[str, deque[float]] = {}
        self._server_ids = itertools.count(1)
        self._methods: dict[str, Callable[[dict[str, str], TokenKind], Any]] = {
            "wall.get": self._wall_get,
            "wall.getById": self._wall_get_by_id,
            "wall.post": self._wall_post,
            "wall.delete": self._wall_delete,
            "groups.getCallbackConfirmationCode": self._confirmation_code,
            "groups.getCallbackServers": self._get_callback_servers,
            "groups.addCallbackServer": self._add_callback_server,
            "groups.editCallbackServer": self._edit_callback_server,
            "groups.setCallbackSettings": self._set_callback_settings,
        }

    # --- control ------------------------------------------------------------------------

    def user_token(self) -> str:
        return self._issue(TokenKind.USER, None)

    def community_token(self, group_id: int) -> str:
        return self._issue(TokenKind.COMMUNITY, group_id)

    def inject(self, fault: Fault) -> None:
        self.faults.append(fault)

    def calls_of(self, method: str) -> list[RecordedCall]:
        return [call for call in self.calls if call.method == method]

    def add_posts(self, owner_id: int, count: int, **fields: Any) -> None:
        """``count`` published posts, oldest first, so the last one added is newest."""
        wall = self.walls.setdefault(owner_id, Wall())
        for _ in range(count):
            post_id = next(wall.next_id)
            wall.posts.insert(0, {"id": post_id, "owner_id": owner_id, "from_id": owner_id,
                                  "date": 1_700_000_000 + post_id, "text": f"post {post_id}",
                                  "post_type": "post", **fields})

    @asynccontextmanager
    async def running(self) -> AsyncIterator[str]:
        """Serve on a free port of 127.0.0.1; yields the API base URL (``.../method``)."""
        app = web.Application()
        app.router.add_post("/method/{method}", self._handle)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        try:
            yield str(server.make_url("/method"))
        finally:
            await server.close()

    def _issue(self, kind: TokenKind, group_id: int | None) -> str:
        token = f"vk1.a.{secrets.token_urlsafe(48)}"
        self.tokens[token] = (kind, group_id)
        return token

    # --- HTTP ---------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        form = {key: str(value) for key, value in (await request.post()).items()}
        token = form.pop("access_token", "")
        known = self.tokens.get(token)
        call = RecordedCall(method, time.monotonic(), form, known[0] if known else None,
                            request.content_type)
        self.calls.append(call)
        if latency := sum(f.seconds for f in self.faults
                          if f.kind == "latency" and f.matches(method)):
            await asyncio.sleep(latency)
        if (fault := self._take("http_status", method)) is not None:
            call.http_status = fault.status
            return web.Response(status=fault.status, text="<html>bad gateway</html>",
                                content_type="text/html")
        if self._take("malformed", method) is not None:
            return web.Response(text='{"response": {"count": 1, "ite', content_type="application/json")
        try:
            result = self._run(method, form, token, known)
        except FakeVkError as error:
            call.error_code = error.code
            echoed = [{"key": "method", "value": method}, {"key": "access_token", "value": token},
                      *({"key": key, "value": value} for key, value in form.items())]
            return web.json_response({"error": {"error_code": error.code,
                                                "error_msg": error.message,
                                                "request_params": echoed}})
        return web.json_response(result)

    def _run(self, method: str, form: dict[str, str], token: str,
             known: tuple[TokenKind, int | None] | None) -> dict[str, Any]:
        if known is None:
            raise FakeVkError(5, "User authorization failed: invalid access_token (4).")
        if not self._admit(token, known[0]):
            raise FakeVkError(6, "Too many requests per second")
        if (fault := self._take("error", method)) is not None:
            raise FakeVkError(fault.code, (fault.message or f"Error {fault.code}")
                              .replace("{token}", token))
        if form.get("v") != "5.199":
            raise FakeVkError(8, "Invalid request: v (version) is required")
        if method == "execute":
            return self._execute(form.get("code", ""), known[0])
        handler = self._methods.get(method)
        if handler is None:
            raise FakeVkError(3, "Unknown method passed")
        return {"response": handler(form, known[0])}

    def _take(self, kind: str, method: str) -> Fault | None:
        for fault in self.faults:
            if fault.kind == kind and fault.matches(method):
                fault.count -= 1
                if fault.count == 0:
                    self.faults.remove(fault)
                return fault
        return None

    def _admit(self, token: str, kind: TokenKind) -> bool:
        """VK's check: at most N admitted requests per token in any window."""
        now = time.monotonic()
        admitted = self._admitted.setdefault(token, deque())
        while admitted and admitted[0] <= now - self.window_seconds:
            admitted.popleft()
        if len(admitted) >= self.limits[kind]:
            return False
        admitted.append(now)
        return True

    def _execute(self, code: str, kind: TokenKind) -> dict[str, Any]:
        if not (code.startswith("return [") and code.endswith("];")):
            raise FakeVkError(12, "Unable to compile code")
        body, position, decoder = code[len("return ["):-2], 0, json.JSONDecoder()
        results: list[Any] = []
        errors: list[dict[str, Any]] = []
        while position < len(body):
            match = _EXECUTE_CALL.match(body, position)
            if match is None:
                raise FakeVkError(12, "Unable to compile code")
            params, end = decoder.raw_decode(body, match.end())
            position = end + 1 + (body[end + 1:end + 2] == ",")
            method = match.group(1)
            form = {key: _form_text(value) for key, value in params.items()}
            try:
                if (fault := self._take("error", method)) is not None:
                    raise FakeVkError(fault.code, fault.message or f"Error {fault.code}")
                results.append(self._methods[method](form, kind))
            except FakeVkError as error:
                results.append(False)
                errors.append({"method": method, "error_code": error.code,
                               "error_msg": error.message})
        return {"response": results, **({"execute_errors": errors} if errors else {})}

    # --- methods ------------------------------------------------------------------------

    def _wall_get(self, form: dict[str, str], kind: TokenKind) -> dict[str, Any]:
        wall = self.walls.get(int(form["owner_id"]), Wall())
        postponed = form.get("filter") == "postponed"
        posts = [post for post in wall.posts if (post["post_type"] == "postpone") == postponed]
        offset, count = int(form.get("offset", "0")), int(form.get("count", "20"))
        if not 0 <= count <= 100:
            raise FakeVkError(100, "One of the parameters specified was missing or invalid")
        return {"count": len(posts), "items": posts[offset:offset + count]}

    def _wall_get_by_id(self, form: dict[str, str], kind: TokenKind) -> dict[str, Any]:
        wanted = set(form["posts"].split(","))
        return {"items": [post for wall in self.walls.values() for post in wall.posts
                          if f"{post['owner_id']}_{post['id']}" in wanted]}

    def _wall_post(self, form: dict[str, str], kind: TokenKind) -> dict[str, Any]:
        if kind is TokenKind.COMMUNITY:
            raise FakeVkError(27, "Group authorization failed: method is unavailable with "
                                  "group auth.")
        owner_id = int(form["owner_id"])
        wall = self.walls.setdefault(owner_id, Wall())
        post_id = next(wall.next_id)
        attachments = [{"type": "photo", "photo": {"owner_id": int(owner), "id": int(item)}}
                       for owner, item in (re.findall(r"photo(-?\d+)_(\d+)",
                                                      form.get("attachments", "")))]
        wall.posts.insert(0, {
            "id": post_id, "owner_id": owner_id,
            "from_id": owner_id if form.get("from_group") == "1" else 1,
            "date": int(form.get("publish_date", time.time())), "text": form.get("message", ""),
            "post_type": "postpone" if "publish_date" in form else "post",
            "attachments": attachments,
        })
        return {"post_id": post_id}

    def _wall_delete(self, form: dict[str, str], kind: TokenKind) -> int:
        wall = self.walls.get(int(form["owner_id"]), Wall())
        before = len(wall.posts)
        wall.posts[:] = [post for post in wall.posts if post["id"] != int(form["post_id"])]
        if len(wall.posts) == before:
            raise FakeVkError(210, "Access to wall's post denied")
        return 1

    def _confirmation_code(self, form: dict[str, str], kind: TokenKind) -> dict[str, str]:
        return {"code": f"confirm-{form['group_id']}"}

    def _get_callback_servers(self, form: dict[str, str], kind: TokenKind) -> dict[str, Any]:
        servers = list(self.callback_servers.get(int(form["group_id"]), {}).values())
        return {"count": len(servers), "items": servers}

    def _add_callback_server(self, form: dict[str, str], kind: TokenKind) -> dict[str, int]:
        server_id = next(self._server_ids)
        self.callback_servers.setdefault(int(form["group_id"]), {})[server_id] = {
            "id": server_id, "title": form["title"], "url": form["url"],
            "status": "unconfigured", "creator_id": 1, "secret_key": form.get("secret_key"),
        }
        return {"server_id": server_id}

    def _edit_callback_server(self, form: dict[str, str], kind: TokenKind) -> int:
        server = self.callback_servers[int(form["group_id"])][int(form["server_id"])]
        server.update(title=form["title"], url=form["url"], secret_key=form["secret_key"])
        return 1

    def _set_callback_settings(self, form: dict[str, str], kind: TokenKind) -> int:
        key = (int(form["group_id"]), int(form["server_id"]))
        self.callback_settings[key] = {name: value for name, value in form.items()
                                       if name not in {"group_id", "server_id", "v"}}
        return 1


def _form_text(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, list):
        return ",".join(_form_text(item) for item in value)
    return str(value)
