"""The VK sandbox served in-process on a real localhost port, as ``python -m tools.vk_sandbox``
serves it, with its control API and a caller of its VK API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any

import aiohttp
from aiohttp import web

from tools.mongod import free_port
from tools.vk_sandbox import SandboxConfig, init_app
from tools.vk_sandbox.control import CreatedCommunity, CreatedUser, SandboxControl
from tools.vk_sandbox.delivery import Sleep
from tools.vk_sandbox.schema import validate_method_response

API_VERSION = "5.199"
# How long the sandbox tests wait for the sandbox to act, and how often they look.
WAIT_TIMEOUT = 5.0
POLL_INTERVAL = 0.01

# For tests that are not about rate limits: they make many calls with one token.
UNLIMITED = SandboxConfig(user_requests_per_second=10_000, community_requests_per_second=10_000,
                          delivery_timeout_seconds=2.0)


@dataclass(frozen=True)
class RunningSandbox:
    """A sandbox on a real localhost port: its control API, and VK API calls to it."""

    base_url: str
    control: SandboxControl
    session: aiohttp.ClientSession

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/method"

    async def raw_api(
        self, method: str, token: str | None = None, *, version: str | None = API_VERSION,
        http_get: bool = False, **params: Any,
    ) -> aiohttp.ClientResponse:
        """One VK API request; the caller reads (and releases) the response."""
        data = {key: str(value) for key, value in params.items()}
        if token is not None:
            data["access_token"] = token
        if version is not None:
            data["v"] = version
        url = f"{self.api_url}/{method}"
        if http_get:
            return await self.session.get(url, params=data)
        return await self.session.post(url, data=data)

    async def api(
        self, method: str, token: str | None = None, *, version: str | None = API_VERSION,
        http_get: bool = False, **params: Any,
    ) -> dict[str, Any]:
        """A VK API call whose reply is checked against VK's schema before it is returned
        (execute replies are lists VK's schema does not describe; tests check their slots)."""
        async with await self.raw_api(method, token, version=version, http_get=http_get,
                                      **params) as response:
            assert response.status == 200
            body: dict[str, Any] = await response.json()
        if method != "execute" or "error" in body:
            validate_method_response(method, body, extended=str(params.get("extended")) == "1")
        return body

    async def community_with_admin(
        self, name: str = "Test community"
    ) -> tuple[CreatedCommunity, CreatedUser]:
        community = await self.control.create_community(name=name)
        admin = await self.control.create_user(admin_of=[community.group_id])
        return community, admin


@asynccontextmanager
async def running_sandbox(config: SandboxConfig = UNLIMITED, *, sleep: Sleep = asyncio.sleep,
                          **overrides: Any) -> AsyncIterator[RunningSandbox]:
    """A fresh sandbox, served as ``python -m tools.vk_sandbox`` serves it.

    Unlike ``aiohttp.test_utils.TestServer`` (which cancels a handler whose client went
    away), a request keeps running after the client timed out — as on VK, where a
    ``wall.post`` that timed out may still be published. ``sleep`` takes the pauses
    between callback delivery retries.
    """
    runner = web.AppRunner(init_app(replace(config, **overrides), sleep=sleep), access_log=None,
                           handle_signals=False)
    await runner.setup()
    try:
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        base_url = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as session:
            yield RunningSandbox(base_url, SandboxControl(base_url, session), session)
    finally:
        await runner.cleanup()
