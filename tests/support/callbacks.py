"""A Callback API endpoint for tests, and registering it with the sandbox as a community's
callback server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.support.sandbox import API_VERSION, POLL_INTERVAL, WAIT_TIMEOUT, RunningSandbox
from tests.support.waiting import eventually
from tools.vk_sandbox.control import CreatedCommunity
from tools.vk_sandbox.schema import validate_callback


@dataclass
class ReceivedRequest:
    payload: dict[str, Any]
    headers: dict[str, str]
    at: float

    @property
    def type(self) -> str:
        return str(self.payload.get("type"))

    @property
    def retry_counter(self) -> int | None:
        value = self.headers.get("X-Retry-Counter")
        return int(value) if value is not None else None


Reply = tuple[int, str, dict[str, str]]  # status, body, headers


@dataclass
class CallbackReceiver:
    """A Callback API endpoint: answers the handshake with ``confirmation_code``, events
    with ``ok`` unless ``reply`` says otherwise (after ``before_reply``, if set), and
    validates everything against VK's schema (violations collect in ``schema_errors``)."""

    confirmation_code: str = ""
    reply: Callable[[ReceivedRequest], Reply] | None = None
    before_reply: Callable[[ReceivedRequest], Awaitable[None]] | None = None
    requests: list[ReceivedRequest] = field(default_factory=list)
    schema_errors: list[str] = field(default_factory=list)
    url: str = ""
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    def events(self, event_type: str | None = None) -> list[ReceivedRequest]:
        return [request for request in self.requests if request.type != "confirmation"
                and (event_type is None or request.type == event_type)]

    async def wait_for(
        self, predicate: Callable[[CallbackReceiver], bool], timeout: float = WAIT_TIMEOUT,
        what: str = "",
    ) -> None:
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(lambda: predicate(self)), timeout)
            except TimeoutError:
                raise AssertionError(
                    f"timed out waiting for {what or 'callback requests'}; got "
                    f"{[(r.type, r.retry_counter) for r in self.requests]}") from None

    async def handle(self, request: web.Request) -> web.Response:
        payload = await request.json()
        received = ReceivedRequest(payload, dict(request.headers), time.time())
        try:
            validate_callback(payload)
        except Exception as error:  # collected, asserted by the tests
            self.schema_errors.append(f"{payload.get('type')}: {error}")
        async with self._changed:
            self.requests.append(received)
            self._changed.notify_all()
        if self.before_reply is not None:
            await self.before_reply(received)
        if self.reply is not None:
            status, body, headers = self.reply(received)
            return web.Response(status=status, text=body, headers=headers)
        if received.type == "confirmation":
            return web.Response(text=self.confirmation_code)
        return web.Response(text="ok")


@asynccontextmanager
async def running_receiver() -> AsyncIterator[CallbackReceiver]:
    receiver = CallbackReceiver()
    app = web.Application()
    app.router.add_post("/callback", receiver.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    receiver.url = str(server.make_url("/callback"))
    try:
        yield receiver
    finally:
        await server.close()


ALL_WALL_EVENTS = ("wall_post_new", "wall_repost", "wall_schedule_post_new",
                   "wall_schedule_post_delete")


async def connect_server(
    sandbox: RunningSandbox, receiver: CallbackReceiver, community: CreatedCommunity,
    token: str, *, secret: str = "s3cret", events: tuple[str, ...] = ALL_WALL_EVENTS,
    api_version: str = API_VERSION,
) -> int:
    """Register the receiver as a callback server, wait until it is confirmed, enable events."""
    receiver.confirmation_code = community.confirmation_code
    added = await sandbox.api("groups.addCallbackServer", token, group_id=community.group_id,
                              url=receiver.url, title="tests", secret_key=secret)
    server_id = int(added["response"]["server_id"])
    await wait_for_status(sandbox, community.group_id, token, server_id, "ok")
    flags: dict[str, Any] = dict.fromkeys(events, 1)
    settings = await sandbox.api("groups.setCallbackSettings", token, group_id=community.group_id,
                                 server_id=server_id, api_version=api_version, **flags)
    assert settings == {"response": 1}
    return server_id


async def server_status(sandbox: RunningSandbox, group_id: int, token: str, server_id: int
                        ) -> str:
    reply = await sandbox.api("groups.getCallbackServers", token, group_id=group_id,
                              server_ids=server_id)
    return str(reply["response"]["items"][0]["status"])


async def wait_for_status(sandbox: RunningSandbox, group_id: int, token: str, server_id: int,
                          status: str) -> None:
    async def reached() -> bool:
        return await server_status(sandbox, group_id, token, server_id) == status

    await eventually(reached, timeout=WAIT_TIMEOUT, interval=POLL_INTERVAL,
                     what=f"callback server status {status}")


async def finished_deliveries(sandbox: RunningSandbox, count: int, **filters: Any
                              ) -> list[dict[str, Any]]:
    """Wait until ``count`` deliveries matching ``filters`` are delivered or given up."""
    found: list[dict[str, Any]] = []

    async def done() -> bool:
        nonlocal found
        found = [d for d in await sandbox.control.deliveries(**filters)
                 if d["delivered"] or d["gave_up"]]
        return len(found) >= count

    await eventually(done, timeout=WAIT_TIMEOUT, interval=POLL_INTERVAL,
                     what=f"{count} finished deliveries {filters}")
    return found
