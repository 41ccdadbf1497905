"""Fixtures for VK client tests: a fake VK on real HTTP and a client pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from shared.retry import BackoffPolicy
from shared.vk.client import VkClient
from shared.vk.rate_limit import RateLimiterRegistry
from tests.vk.fake_vk import FakeVk

# Real backoff shape, test-sized pauses, no jitter so timings are predictable.
FAST_BACKOFF = BackoffPolicy(base_seconds=0.01, multiplier=2, max_seconds=0.1, jitter=0)


@pytest.fixture
async def fake_vk() -> AsyncIterator[FakeVk]:
    fake = FakeVk()
    async with fake.running() as api_url:
        fake.api_url = api_url
        yield fake


def make_client(api_url: str, *, timeout_seconds: float = 2.0, max_attempts: int = 4,
                user_rps: float = 3.0) -> VkClient:
    """A client with test timings and its own rate limiters (tests do not share tokens)."""
    return VkClient(api_url, timeout_seconds=timeout_seconds, max_attempts=max_attempts,
                    user_rps=user_rps, backoff=FAST_BACKOFF, rate_limiters=RateLimiterRegistry())


@pytest.fixture
async def vk(fake_vk: FakeVk) -> AsyncIterator[VkClient]:
    async with make_client(fake_vk.api_url) as client:
        yield client
