"""Concurrent first pages of one token read through shared ``execute`` requests (sandbox)."""

from __future__ import annotations

import asyncio

from shared.vk.client import VkClient
from shared.vk.errors import VkAuthError, VkInvalidParameter
from shared.vk.models import WallFilter, WallPage
from shared.vk.page_batch import WallPageBatcher
from tests.support.communities import Community
from tools.vk_sandbox.control import SandboxControl


class TestWallPageBatcher:
    async def test_concurrent_reads_of_one_token_share_full_requests(
            self, sandbox: SandboxControl, vk: VkClient, community: Community) -> None:
        """60 reads at once: 3 requests of at most 25 calls, each caller gets its own page."""
        await sandbox.create_post(community.group_id, "published")
        await sandbox.create_post(community.group_id, "later", publish_date=1_900_000_000)
        batcher = WallPageBatcher(vk, linger=0.01)
        filters = [WallFilter.ALL, WallFilter.POSTPONED] * 30

        pages = await asyncio.gather(*(
            batcher.first_page(community.token, community.owner_id, wall_filter, 100)
            for wall_filter in filters))

        assert all(isinstance(page, WallPage) and page.count == 1 for page in pages)
        assert [page.items[0].text for page in pages[:2]] == ["published", "later"]
        assert len(await sandbox.calls("execute")) == batcher.requests == 3

    async def test_each_caller_gets_its_own_error_and_a_request_error_reaches_all(
            self, sandbox: SandboxControl, vk: VkClient, community: Community) -> None:
        """A wall that is not there fails only its read; a dead token fails every read."""
        batcher = WallPageBatcher(vk, linger=0.01)
        outcomes = await asyncio.gather(
            batcher.first_page(community.token, community.owner_id, WallFilter.ALL, 10),
            batcher.first_page(community.token, -999_999, WallFilter.POSTPONED, 10),
            return_exceptions=True)
        assert isinstance(outcomes[0], WallPage)
        assert isinstance(outcomes[1], VkInvalidParameter)  # no such community

        dead = await asyncio.gather(*(
            batcher.first_page("revoked-token", community.owner_id, WallFilter.ALL, 10)
            for _ in range(3)), return_exceptions=True)
        assert all(isinstance(outcome, VkAuthError) for outcome in dead)
        assert len(await sandbox.calls("execute")) == 2
