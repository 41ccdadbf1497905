"""VK's request rate limits: 3/s per user token, 20/s per community token, error 6."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from tests.support.sandbox import RunningSandbox


async def burst(sandbox: RunningSandbox, n: int, method: str, token: str, **params: Any
                ) -> list[int | None]:
    """``n`` concurrent calls; the error code of each (None for success)."""
    replies = await asyncio.gather(*(sandbox.api(method, token, **params) for _ in range(n)))
    return [reply["error"]["error_code"] if "error" in reply else None for reply in replies]


class TestRateLimit:
    async def test_fourth_user_request_in_a_second_is_6(
            self, vk_limited_sandbox: RunningSandbox) -> None:
        """More than 3 requests per second with one user token: error 6."""
        sandbox = vk_limited_sandbox
        community, admin = await sandbox.community_with_admin()
        codes = await burst(sandbox, 5, "wall.get", admin.token, owner_id=-community.group_id)
        assert sorted(codes, key=str) == [6, 6, None, None, None]
        body = await sandbox.api("wall.get", admin.token, owner_id=-community.group_id)
        assert body["error"]["error_msg"] == "Too many requests per second"

    async def test_tokens_are_limited_separately(
            self, vk_limited_sandbox: RunningSandbox) -> None:
        """Another user's token has its own budget."""
        sandbox = vk_limited_sandbox
        community, admin = await sandbox.community_with_admin()
        other = await sandbox.control.create_user(admin_of=[community.group_id])
        assert await burst(sandbox, 3, "wall.get", admin.token, owner_id=-community.group_id
                           ) == [None] * 3
        assert await burst(sandbox, 3, "wall.get", other.token, owner_id=-community.group_id
                           ) == [None] * 3

    async def test_window_slides(self, vk_limited_sandbox: RunningSandbox) -> None:
        """After error 6 the token stays refused until its oldest call is a second old."""
        sandbox = vk_limited_sandbox
        community, admin = await sandbox.community_with_admin()
        await burst(sandbox, 3, "wall.get", admin.token, owner_id=-community.group_id)
        first_at = min(call["at"] for call in await sandbox.control.calls("wall.get"))
        deadline = time.monotonic() + 3.0
        while True:
            reply = await sandbox.api("wall.get", admin.token, owner_id=-community.group_id)
            if "response" in reply:
                break
            assert reply["error"]["error_code"] == 6
            assert time.monotonic() < deadline, "the window never slid"
            await asyncio.sleep(0.05)
        assert time.time() - first_at >= 0.95, "admitted again before a second had passed"

    async def test_community_token_allows_20(self, vk_limited_sandbox: RunningSandbox) -> None:
        """A community token gets 20 requests per second, the 21st is error 6."""
        sandbox = vk_limited_sandbox
        community, _ = await sandbox.community_with_admin()
        codes = await burst(sandbox, 21, "groups.getCallbackServers", community.community_token,
                            group_id=community.group_id)
        assert codes.count(None) == 20 and codes.count(6) == 1

    async def test_execute_counts_once(self, vk_limited_sandbox: RunningSandbox) -> None:
        """An execute with 5 inner calls uses one request of the budget."""
        sandbox = vk_limited_sandbox
        community, admin = await sandbox.community_with_admin()
        call = f'API.wall.get({{"owner_id": {-community.group_id}}})'
        for _ in range(3):
            body = await sandbox.api("execute", admin.token, code=f"return [{','.join([call] * 5)}];")
            assert "response" in body and len(body["response"]) == 5
        body = await sandbox.api("execute", admin.token, code=f"return {call};")
        assert body["error"]["error_code"] == 6

    async def test_refused_calls_are_logged(self, vk_limited_sandbox: RunningSandbox) -> None:
        """The call log records refused calls with error_code 6."""
        sandbox = vk_limited_sandbox
        community, admin = await sandbox.community_with_admin()
        await burst(sandbox, 4, "wall.get", admin.token, owner_id=-community.group_id)
        codes = [call["error_code"] for call in await sandbox.control.calls("wall.get")]
        assert sorted(codes, key=str) == [6, None, None, None]
