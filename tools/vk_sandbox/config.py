"""Settings of one sandbox instance."""

from __future__ import annotations

from dataclasses import dataclass

API_VERSION = "5.199"

# VK's Callback API retry schedule: the waits before retries 1..5 after a failed delivery.
RETRY_SCHEDULE_SECONDS: tuple[float, ...] = (10.0, 180.0, 600.0, 1800.0, 3600.0)


@dataclass
class SandboxConfig:
    """How the sandbox behaves. Mutable: ``POST /_sandbox/config`` changes some fields live.

    ``retry_scale`` multiplies the Callback API retry schedule (0.001 turns VK's 10 s
    into 10 ms); it does not scale ``Retry-After`` (see :mod:`.delivery`).
    """

    host: str = "127.0.0.1"
    port: int = 8090
    demo: bool = False
    retry_scale: float = 1.0
    # VK's limits: 3 requests per second per user token, 20 per community token.
    user_requests_per_second: int = 3
    community_requests_per_second: int = 20
    rate_window_seconds: float = 1.0
    # How long a Callback API receiver may take to answer one request.
    delivery_timeout_seconds: float = 5.0
    # Upper bound on a receiver's Retry-After: VK's longest retry slot.
    retry_after_cap_seconds: float = RETRY_SCHEDULE_SECONDS[-1]
    # Bounds of the in-memory call and delivery logs (oldest entries drop first).
    log_capacity: int = 10_000
