"""How soon VK should retry an event the gateway could not store (503).

VK retries a failed delivery on its own schedule — 10 s, 3 min, 10 min, 30 min, 1 h
after the failed try, about 1 h 43 min in all — and a ``Retry-After`` on a 503 replaces
the slot of that one retry (VK: under 3 hours). A constant hint of a few seconds would
shrink the whole window to about half a minute, so a longer outage of the broker or
MongoDB would make VK give up on the events sent meanwhile. So the hint speeds up only
the first retry (most outages are a restart or a failover, seconds long); the later
ones keep VK's schedule, and with it VK's patience.
"""

from __future__ import annotations

FIRST_RETRY_SECONDS = 5


def retry_after_header(retry_counter: int | None) -> dict[str, str]:
    """Headers for a 503 to the try numbered ``retry_counter`` (None or 0: the first)."""
    if not retry_counter:
        return {"Retry-After": str(FIRST_RETRY_SECONDS)}
    return {}
