"""VK clients with test timings, each with rate limiters of its own."""

from __future__ import annotations

import asyncio
import socket

from shared.clock import Sleep
from shared.retry import BackoffPolicy
from shared.vk.client import VkClient
from shared.vk.rate_limit import RateLimiterRegistry

# The real backoff shape at test-sized pauses, without jitter so timings are predictable.
FAST_BACKOFF = BackoffPolicy(base_seconds=0.01, multiplier=2, max_seconds=0.1, jitter=0)


def make_client(api_url: str, *, timeout_seconds: float = 2.0, max_attempts: int = 4,
                user_rps: float = 3.0, sleep: Sleep = asyncio.sleep) -> VkClient:
    """A client with test timings and its own rate limiters, so tests never share one."""
    return VkClient(api_url, timeout_seconds=timeout_seconds, max_attempts=max_attempts,
                    user_rps=user_rps, backoff=FAST_BACKOFF, rate_limiters=RateLimiterRegistry(),
                    sleep=sleep)


def closed_port_url() -> str:
    """An API URL on a local port nobody listens on: connections are refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/method"
