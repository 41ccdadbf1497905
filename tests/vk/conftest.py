"""Fixtures for VK client tests: the VK sandbox in-process on a real port, and clients.

Each test gets its own sandbox (fresh state, faults and call log) from the
project-wide ``vk_sandbox`` fixture, with VK's limits (3 requests/s per user token,
20 per community token).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from shared.retry import BackoffPolicy, Sleep
from shared.vk.client import VkClient
from shared.vk.rate_limit import RateLimiterRegistry
from tests.conftest import RunningSandbox
from tools.vk_sandbox.control import SandboxControl

# The real backoff shape at test-sized pauses, without jitter so timings are predictable.
FAST_BACKOFF = BackoffPolicy(base_seconds=0.01, multiplier=2, max_seconds=0.1, jitter=0)


@dataclass(frozen=True)
class Community:
    """A sandbox community with its own token and an admin's user token."""

    group_id: int
    community_token: str
    admin_token: str
    confirmation_code: str

    @property
    def owner_id(self) -> int:
        return -self.group_id


def make_client(api_url: str, *, timeout_seconds: float = 2.0, max_attempts: int = 4,
                user_rps: float = 3.0, sleep: Sleep = asyncio.sleep) -> VkClient:
    """A client with test timings and its own rate limiters, so tests never share one."""
    return VkClient(api_url, timeout_seconds=timeout_seconds, max_attempts=max_attempts,
                    user_rps=user_rps, backoff=FAST_BACKOFF, rate_limiters=RateLimiterRegistry(),
                    sleep=sleep)


class RecordedPauses:
    """A ``sleep`` for the client that records each pause and takes none, so a test
    asserts the exact retry schedule instead of timing it."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)


def closed_port_url() -> str:
    """An API URL on a local port nobody listens on: connections are refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/method"


@pytest.fixture
def sandbox(vk_sandbox: RunningSandbox) -> SandboxControl:
    """The control API of this test's sandbox (served by the shared ``vk_sandbox``)."""
    return vk_sandbox.control


@pytest.fixture
async def community(sandbox: SandboxControl) -> Community:
    created = await sandbox.create_community(name="Planner test")
    admin = await sandbox.create_user(admin_of=[created.group_id])
    return Community(created.group_id, created.community_token, admin.token,
                     created.confirmation_code)


@pytest.fixture
async def vk(sandbox: SandboxControl) -> AsyncIterator[VkClient]:
    async with make_client(sandbox.api_url) as client:
        yield client
