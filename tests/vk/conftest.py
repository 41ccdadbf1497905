"""Fixtures for VK client tests: the VK sandbox in-process on a real port, and clients.

Each test gets its own sandbox (fresh state, faults and call log) from the
project-wide ``vk_sandbox`` fixture, with VK's limits (3 requests/s per user token,
20 per community token).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from shared.vk.client import VkClient
from tests.support.communities import Community, sandbox_community
from tests.support.sandbox import RunningSandbox
from tests.support.vk_client import make_client
from tools.vk_sandbox.control import SandboxControl


@pytest.fixture
def sandbox(vk_sandbox: RunningSandbox) -> SandboxControl:
    """The control API of this test's sandbox (served by the shared ``vk_sandbox``)."""
    return vk_sandbox.control


@pytest.fixture
async def community(sandbox: SandboxControl) -> Community:
    return await sandbox_community(sandbox, name="Planner test")


@pytest.fixture
async def vk(sandbox: SandboxControl) -> AsyncIterator[VkClient]:
    async with make_client(sandbox.api_url) as client:
        yield client
