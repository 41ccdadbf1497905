"""The control API and its client: communities, users, posts, logs, config, errors."""

from __future__ import annotations

import time

import aiohttp
import pytest

from tests.support.sandbox import RunningSandbox
from tools.vk_sandbox.control import SandboxControl, SandboxControlError
from tools.vk_sandbox.schema import validate_object


class TestSandboxControl:
    async def test_communities_and_users(self, sandbox: RunningSandbox) -> None:
        """Ids are given or picked; taken ids are 409; admin_of must name communities (404)."""
        first = await sandbox.control.create_community(group_id=42, name="Answer")
        assert (first.group_id, first.name) == (42, "Answer")
        assert first.community_token and len(first.confirmation_code) == 8
        second = await sandbox.control.create_community()
        assert second.group_id == 43 and second.community_token != first.community_token
        with pytest.raises(SandboxControlError) as caught:
            await sandbox.control.create_community(group_id=42)
        assert caught.value.status == 409
        user = await sandbox.control.create_user(user_id=7, admin_of=[42, 43])
        assert user.user_id == 7 and user.token
        with pytest.raises(SandboxControlError) as caught:
            await sandbox.control.create_user(admin_of=[999])
        assert caught.value.status == 404

    async def test_posts_and_wall(self, sandbox: RunningSandbox) -> None:
        """Control posts land in the wall snapshot by kind, as VK-shaped (schema-valid) items."""
        community = await sandbox.control.create_community()
        group_id = community.group_id
        published = await sandbox.control.create_post(group_id, "now", attachments=["photo-1_2"])
        scheduled = await sandbox.control.create_post(group_id, "later",
                                                      publish_date=int(time.time()) + 600)
        suggested = await sandbox.control.create_post(group_id, "idea", post_type="suggest")
        wall = await sandbox.control.wall(group_id)
        assert [p["id"] for p in wall["published"]] == [published["id"]]
        assert [p["id"] for p in wall["postponed"]] == [scheduled["id"]]
        assert [p["id"] for p in wall["suggests"]] == [suggested["id"]]
        for item in (*wall["published"], *wall["postponed"], *wall["suggests"]):
            validate_object("wall_wall_item", item)
        deleted = await sandbox.control.delete_post(group_id, published["id"])
        assert deleted["id"] == published["id"]
        assert (await sandbox.control.wall(group_id))["published"] == []

    async def test_not_found_and_bad_bodies(self, sandbox: RunningSandbox) -> None:
        """Unknown communities/posts are 404; invalid bodies 400."""
        community = await sandbox.control.create_community()
        cases = [
            sandbox.control.create_post(999, "x"),
            sandbox.control.delete_post(community.group_id, 12345),
            sandbox.control.wall(999),
            sandbox.control.create_post(community.group_id, "x", repost=True),
        ]
        for case in cases:
            with pytest.raises(SandboxControlError) as caught:
                await case
            assert caught.value.status == 404
        with pytest.raises(SandboxControlError) as caught:
            await sandbox.control.create_post(community.group_id, "x", attachments=["video1_2"])
        assert caught.value.status == 400

    async def test_call_log(self, sandbox: RunningSandbox) -> None:
        """Calls are logged with token kind, params without access_token, time and error."""
        community, admin = await sandbox.community_with_admin()
        before = time.time()
        await sandbox.api("wall.get", admin.token, owner_id=-community.group_id)
        await sandbox.api("wall.get", community.community_token, owner_id=-community.group_id)
        await sandbox.api("wall.get", "nope", owner_id=-community.group_id)
        await sandbox.api("groups.getCallbackServers", admin.token, group_id=community.group_id)
        calls = await sandbox.control.calls("wall.get")
        assert [(c["token_kind"], c["error_code"]) for c in calls] == [
            ("user", None), ("community", 27), ("unknown", 5)]
        assert calls[0]["params"] == {"owner_id": str(-community.group_id), "v": "5.199"}
        assert all(before <= c["at"] <= time.time() for c in calls)
        assert len(await sandbox.control.calls()) == 4
        await sandbox.control.clear_calls()
        assert await sandbox.control.calls() == []

    async def test_config(self, sandbox: RunningSandbox) -> None:
        """set_config changes settings live and returns them."""
        config = await sandbox.control.set_config(retry_scale=0.5, user_requests_per_second=1)
        assert config["retry_scale"] == 0.5 and config["user_requests_per_second"] == 1
        community, admin = await sandbox.community_with_admin()
        await sandbox.api("wall.get", admin.token, owner_id=-community.group_id)
        reply = await sandbox.api("wall.get", admin.token, owner_id=-community.group_id)
        assert reply["error"]["error_code"] == 6
        with pytest.raises(SandboxControlError):
            await sandbox.control.set_config(retry_scale=-1)

    async def test_client_owns_its_session(self, sandbox: RunningSandbox) -> None:
        """Without a session the client makes and closes its own."""
        async with SandboxControl(sandbox.base_url) as control:
            assert await control.health()
            assert control.api_url == f"{sandbox.base_url}/method"

    async def test_client_leaves_shared_session_open(self, sandbox: RunningSandbox) -> None:
        """A session passed in stays open after the client closes."""
        async with aiohttp.ClientSession() as session:
            async with SandboxControl(sandbox.base_url, session) as control:
                await control.create_community()
            assert not session.closed
