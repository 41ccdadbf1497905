from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from shared.vk import VkClient, VkTooManyRequests, WallFilter
from tests.support.communities import Community
from tools.vk_sandbox.control import SandboxControl


def calls(method: str, outcome: str) -> float:
    return REGISTRY.get_sample_value("vk_api_calls_total",
                                     {"method": method, "outcome": outcome}) or 0.0


class TestCallMetrics:
    async def test_calls_are_counted_by_outcome_and_error_code(
        self, vk: VkClient, sandbox: SandboxControl, community: Community
    ) -> None:
        """Each request counts once: answers as 'ok', VK errors under their code."""
        ok_before, six_before = calls("wall.get", "ok"), calls("wall.get", "6")
        await vk.wall_get(community.token, community.owner_id, WallFilter.ALL)
        await sandbox.inject_fault("error", method="wall.get", code=6, count=10)
        with pytest.raises(VkTooManyRequests):
            await vk.wall_get(community.token, community.owner_id, WallFilter.ALL)
        assert calls("wall.get", "ok") == ok_before + 1
        assert calls("wall.get", "6") == six_before + 4  # make_client retries up to 4 times
