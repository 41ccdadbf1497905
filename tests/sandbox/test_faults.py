"""Injected faults: VK errors, latency, HTTP errors, broken JSON, invisible posts."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.support.sandbox import POLL_INTERVAL, RunningSandbox
from tests.support.waiting import eventually
from tools.vk_sandbox.control import SandboxControlError


class TestFaults:
    async def test_error_fault(self, sandbox: RunningSandbox) -> None:
        """The next N calls of the method fail with the code and VK's message, then normal."""
        community, admin = await sandbox.community_with_admin()
        await sandbox.control.inject_fault("error", method="wall.get", code=6, count=2)
        owner = -community.group_id
        replies = [await sandbox.api("wall.get", admin.token, owner_id=owner) for _ in range(3)]
        assert [r.get("error", {}).get("error_code") for r in replies] == [6, 6, None]
        assert replies[0]["error"]["error_msg"] == "Too many requests per second"
        other = await sandbox.api("groups.getCallbackServers", admin.token,
                                  group_id=community.group_id)
        assert "response" in other, "other methods are not affected"

    async def test_error_fault_messages(self, sandbox: RunningSandbox) -> None:
        """Known codes carry VK's messages (10: internal error, 9: flood control, 14: captcha)."""
        community, admin = await sandbox.community_with_admin()
        for code, message in ((10, "Internal server error"), (9, "Flood control"),
                              (14, "Captcha needed")):
            await sandbox.control.inject_fault("error", method="wall.get", code=code)
            reply = await sandbox.api("wall.get", admin.token, owner_id=-community.group_id)
            assert (reply["error"]["error_code"], reply["error"]["error_msg"]) == (code, message)
        assert await sandbox.control.faults() == []

    async def test_error_fault_inside_execute(self, sandbox: RunningSandbox) -> None:
        """An error fault hits the matching inner execute call: false + execute_errors."""
        community, admin = await sandbox.community_with_admin()
        await sandbox.control.inject_fault("error", method="wall.get", code=10)
        call = f'API.wall.get({{"owner_id": {-community.group_id}}})'
        body = await sandbox.api("execute", admin.token, code=f"return [{call}, {call}];")
        assert body["response"][0] is False and body["response"][1]["count"] == 0
        assert body["execute_errors"][0]["error_code"] == 10

    async def test_latency(self, sandbox: RunningSandbox) -> None:
        """Latency delays replies of the method (or all methods) until cleared."""
        community, admin = await sandbox.community_with_admin()
        await sandbox.control.inject_fault("latency", method="wall.get", seconds=0.3)

        async def timed(method: str, **params: Any) -> float:
            started = time.monotonic()
            await sandbox.api(method, admin.token, **params)
            return time.monotonic() - started

        assert await timed("wall.get", owner_id=-community.group_id) >= 0.3
        assert await timed("groups.getCallbackServers", group_id=community.group_id) < 0.3
        await sandbox.control.clear_faults()
        await sandbox.control.inject_fault("latency", method=None, seconds=0.3)
        assert await timed("groups.getCallbackServers", group_id=community.group_id) >= 0.3
        await sandbox.control.clear_faults()
        assert await timed("wall.get", owner_id=-community.group_id) < 0.3

    async def test_counted_latency(self, sandbox: RunningSandbox) -> None:
        """With ``count``, only the next N calls are delayed."""
        community, admin = await sandbox.community_with_admin()
        await sandbox.control.inject_fault("latency", method="wall.get", seconds=0.3, count=1)
        durations = []
        for _ in range(2):
            started = time.monotonic()
            await sandbox.api("wall.get", admin.token, owner_id=-community.group_id)
            durations.append(time.monotonic() - started)
        assert durations[0] >= 0.3 and durations[1] < 0.3
        assert await sandbox.control.faults() == []

    async def test_http_status(self, sandbox: RunningSandbox) -> None:
        """http_status answers the HTTP error with a non-JSON body, N times."""
        community, admin = await sandbox.community_with_admin()
        await sandbox.control.inject_fault("http_status", method="wall.get", status=503, count=1)
        async with await sandbox.raw_api("wall.get", admin.token,
                                         owner_id=-community.group_id) as response:
            assert response.status == 503
            text = await response.text()
        with pytest.raises(json.JSONDecodeError):
            json.loads(text)
        assert "response" in await sandbox.api("wall.get", admin.token,
                                               owner_id=-community.group_id)
        [first, _] = await sandbox.control.calls("wall.get")
        assert first["http_status"] == 503

    async def test_malformed(self, sandbox: RunningSandbox) -> None:
        """malformed answers HTTP 200 with JSON that does not parse."""
        community, admin = await sandbox.community_with_admin()
        await sandbox.control.inject_fault("malformed", method="wall.get", count=1)
        async with await sandbox.raw_api("wall.get", admin.token,
                                         owner_id=-community.group_id) as response:
            assert response.status == 200
            text = await response.text()
        with pytest.raises(json.JSONDecodeError):
            json.loads(text)

    async def test_hide_posts_for_a_while(self, sandbox: RunningSandbox) -> None:
        """hide_posts: wall.post succeeds, but the post shows up in wall.get/getById only
        after S seconds; the control wall (ground truth) has it at once."""
        community, admin = await sandbox.community_with_admin()
        await sandbox.control.inject_fault("hide_posts", group_id=community.group_id, seconds=0.5)
        owner = -community.group_id
        posted_at = time.time()
        reply = await sandbox.api("wall.post", admin.token, owner_id=owner, from_group=1,
                                  message="lagging")
        post_id = reply["response"]["post_id"]
        listed = await sandbox.api("wall.get", admin.token, owner_id=owner)
        assert listed["response"]["count"] == 0
        by_id = await sandbox.api("wall.getById", admin.token, posts=f"{owner}_{post_id}")
        assert by_id["response"]["items"] == []
        assert len((await sandbox.control.wall(community.group_id))["published"]) == 1

        async def visible() -> bool:
            reply = await sandbox.api("wall.get", admin.token, owner_id=owner)
            return bool(reply["response"]["count"])

        await eventually(visible, timeout=3.0, interval=POLL_INTERVAL,
                         what="the hidden post to appear")
        assert time.time() - posted_at >= 0.5

    async def test_hide_posts_forever_and_clear(self, sandbox: RunningSandbox) -> None:
        """seconds null hides new posts for good; only posts made under the fault hide."""
        community, admin = await sandbox.community_with_admin()
        owner = -community.group_id
        await sandbox.api("wall.post", admin.token, owner_id=owner, from_group=1, message="seen")
        await sandbox.control.inject_fault("hide_posts", group_id=community.group_id,
                                           seconds=None)
        await sandbox.api("wall.post", admin.token, owner_id=owner, from_group=1,
                          message="lost")
        await sandbox.control.clear_faults()
        await sandbox.api("wall.post", admin.token, owner_id=owner, from_group=1,
                          message="seen too")
        listed = await sandbox.api("wall.get", admin.token, owner_id=owner)
        assert [item["text"] for item in listed["response"]["items"]] == ["seen too", "seen"]

    async def test_invalid_fault_is_400(self, sandbox: RunningSandbox) -> None:
        """An unknown kind or a bad field is refused with 400."""
        with pytest.raises(SandboxControlError) as caught:
            await sandbox.control.inject_fault("meteor")
        assert caught.value.status == 400
        with pytest.raises(SandboxControlError):
            await sandbox.control.inject_fault("error", method="wall.get", code=6, count=0)
