"""``execute`` batching against the VK sandbox, whose VKScript parser checks our code."""

from __future__ import annotations

from shared.vk.client import VkClient
from shared.vk.errors import VkAccessDenied, VkError, VkInvalidParameter
from shared.vk.execute import VkCall
from shared.vk.models import WallFilter, WallPage
from tests.support.communities import Community
from tools.vk_sandbox.control import SandboxControl


class TestExecute:
    async def test_thirty_calls_take_two_requests_and_keep_their_order(
            self, sandbox: SandboxControl, vk: VkClient, community: Community) -> None:
        """25 calls per execute: 30 calls are two requests; results come back in call order."""
        await sandbox.create_post(community.group_id, "only post")
        calls = [VkCall("wall.get", {"owner_id": community.owner_id, "count": 1 + n % 3})
                 for n in range(30)]

        results = await vk.execute(community.token, calls)

        assert len(results) == 30
        assert all(isinstance(result, dict) and result["count"] == 1 for result in results)
        assert len(await sandbox.calls("execute")) == 2
        inner = [call for call in await sandbox.calls("wall.get") if call["via_execute"]]
        assert [call["params"]["count"] for call in inner] == [str(1 + n % 3) for n in range(30)]

    async def test_a_failed_inner_call_becomes_its_error(self, sandbox: SandboxControl,
                                                         vk: VkClient,
                                                         community: Community) -> None:
        """VK's false + execute_errors map back to the call that failed, typed."""
        await sandbox.inject_fault("error", method="wall.getById", code=15)
        results = await vk.execute(community.token, [
            VkCall("wall.get", {"owner_id": community.owner_id}),
            VkCall("wall.getById", {"posts": [f"{community.owner_id}_1"]}),
            VkCall("wall.get", {"owner_id": -999_999}),
        ])

        assert isinstance(results[0], dict)
        assert isinstance(results[1], VkAccessDenied)
        assert results[1].method == "wall.getById"
        assert isinstance(results[2], VkInvalidParameter)

    async def test_text_with_quotes_and_cyrillic_reaches_vk_intact(
            self, sandbox: SandboxControl, vk: VkClient, community: Community) -> None:
        """Parameters are JSON-encoded, so quotes and non-ASCII text survive VKScript."""
        text = 'Пост с "кавычками", \\ и [скобками]'
        await vk.execute(community.token, [VkCall("wall.post", {
            "owner_id": community.owner_id, "from_group": True, "message": text})])

        [post] = (await sandbox.wall(community.group_id))["published"]
        assert post["text"] == text


class TestWallGetMany:
    async def test_first_page_of_each_wall(self, sandbox: SandboxControl, vk: VkClient,
                                           community: Community) -> None:
        """Each wall maps to its page, a wall that fails to its error, in one request."""
        other = await sandbox.create_community(name="Other")
        await sandbox.create_post(community.group_id, "ours")
        await sandbox.create_post(other.group_id, "theirs")

        pages = await vk.wall_get_many(community.token,
                                       [community.owner_id, -other.group_id, -999_999],
                                       WallFilter.ALL, count=5)

        ours, theirs, missing = (pages[community.owner_id], pages[-other.group_id],
                                 pages[-999_999])
        assert isinstance(ours, WallPage) and [p.text for p in ours.items] == ["ours"]
        assert isinstance(theirs, WallPage) and [p.text for p in theirs.items] == ["theirs"]
        assert isinstance(missing, VkError)
        assert len(await sandbox.calls("execute")) == 1
