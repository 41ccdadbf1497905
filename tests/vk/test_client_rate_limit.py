"""The client's rate limiter against the sandbox, which enforces VK's 3 requests/s per user."""

from __future__ import annotations

import asyncio

from shared.vk.client import VkClient
from shared.vk.errors import VkError, VkTooManyRequests
from tests.support.communities import Community
from tests.support.vk_client import make_client
from tests.vk.test_rate_limit import most_starts_in_any_window
from tools.vk_sandbox.control import SandboxControl

CALLS = 7  # 3 + 3 + 1: the last one needs two full windows of waiting


class TestVkClientRateLimit:
    async def test_concurrent_calls_on_one_user_token_stay_within_three_per_second(
            self, sandbox: SandboxControl, vk: VkClient, community: Community) -> None:
        """7 concurrent calls: VK sees at most 3 in any second and refuses none."""
        await asyncio.gather(*(vk.wall_get(community.token, community.owner_id)
                               for _ in range(CALLS)))

        calls = await sandbox.calls("wall.get")
        assert [call["error_code"] for call in calls] == [None] * CALLS
        arrivals = [call["at"] for call in calls]
        assert most_starts_in_any_window(arrivals, 1.0) == 3
        assert max(arrivals) - min(arrivals) >= 2.0

    async def test_clients_of_one_process_share_the_limit_by_default(
            self, sandbox: SandboxControl, community: Community) -> None:
        """Two clients built without a registry, one token: one limit for both together."""
        async with VkClient(sandbox.api_url) as first, VkClient(sandbox.api_url) as second:
            await asyncio.gather(*(client.wall_get(community.token, community.owner_id)
                                   for client in (first, second) * 2))

        calls = await sandbox.calls("wall.get")
        assert [call["error_code"] for call in calls] == [None] * 4
        assert most_starts_in_any_window([call["at"] for call in calls], 1.0) == 3

    async def test_without_the_limiter_the_sandbox_refuses_the_burst(
            self, sandbox: SandboxControl, community: Community) -> None:
        """Control: a client allowed 100/s gets error 6, so the test above can fail."""
        async with make_client(sandbox.api_url, user_rps=100, max_attempts=1) as vk:
            results = await asyncio.gather(
                *(vk.wall_get(community.token, community.owner_id) for _ in range(CALLS)),
                return_exceptions=True)

        refused = [result for result in results if isinstance(result, VkError)]
        assert refused
        assert all(isinstance(result, VkTooManyRequests) for result in refused)
