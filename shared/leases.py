"""Leases kept alive by a heartbeat: the rule the refresher's keys and the tracker's
projects both follow.

A lease is short (``REFRESHER_LEASE_SECONDS`` / ``TRACKER_LEASE_SECONDS``, 10 s by
default) and its holder renews it every third of it while it lives, so:

* a holder that dies (``kill -9``, a lost host) is replaced within one lease;
* a live holder is never robbed, however long its work takes: renewal proves life;
* a renewal that fails on a transient error (no MongoDB primary during a failover) is
  tried again shortly, not after another third of the lease; the holder gives the
  lease up only when a renewal finds it taken by someone else.

The leases themselves live in different documents (``refresh_state``,
``post_tracker_leases``); each owner passes its own renewal write.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger(__name__)

RENEWALS_PER_LEASE = 3
# After a failed renewal: try again this soon (a renewal during a failover already
# waits for a primary up to the driver's server selection timeout).
RENEW_RETRY_SECONDS = 0.5

# Extends the lease; False when it was found taken (expired and taken by another holder).
Renew = Callable[[], Awaitable[bool]]


def renew_interval(lease_seconds: float) -> float:
    """How often a holder renews its lease."""
    return lease_seconds / RENEWALS_PER_LEASE


async def keep_alive(renew: Renew, lease_seconds: float, *,
                     retry_seconds: float = RENEW_RETRY_SECONDS) -> None:
    """Renew the lease until cancelled; return when a renewal finds it lost."""
    interval = renew_interval(lease_seconds)
    delay = interval
    while True:
        await asyncio.sleep(delay)
        try:
            renewed = await renew()
        except Exception as exc:  # transient: the lease may still be ours, try again soon
            log.warning("lease_renew_failed", error=f"{type(exc).__name__}: {exc}")
            delay = min(retry_seconds, interval)
            continue
        if not renewed:
            return
        delay = interval
