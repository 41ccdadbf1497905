"""The Callback API sender: confirmation handshakes and event deliveries with VK's retries.

Retries follow VK's schedule (10 s, 3 min, 10 min, 30 min, 1 h after the failed try)
times ``config.retry_scale``; retry n carries ``X-Retry-Counter: n``. A reply is a
success only when it is HTTP 200 with the body ``ok``.

``Retry-After`` choice: on 410/429/503 with ``Retry-After: S`` (seconds or an HTTP date)
the next try waits S seconds *instead of* the scheduled slot. S is real seconds, not
scaled by ``retry_scale`` (it is the receiver's explicit request, and scaling would make
it meaningless in tests), but capped at ``config.retry_after_cap_seconds`` (VK's longest
slot, 1 h) so a receiver cannot stall a delivery forever. The retry counter still
advances, so an event gets at most 6 tries either way.

Deliveries (one per event and server) run as independent tasks, so a server receives
events concurrently, while each delivery's tries are sequential.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import aiohttp

from .callback_servers import CallbackServer, ServerStatus
from .config import RETRY_SCHEDULE_SECONDS, SandboxConfig
from .delivery_log import Delivery, DeliveryAttempt, DeliveryLog
from .faults import FaultBook
from .state import SandboxState

logger = logging.getLogger(__name__)

# How the pause before a retry is taken: asyncio.sleep, or a recording stand-in in tests.
Sleep = Callable[[float], Awaitable[None]]
RETRY_AFTER_STATUSES = frozenset({410, 429, 503})
_BODY_LIMIT = 1000


def new_event_id() -> str:
    """VK's event ids are 40 hex digits."""
    return secrets.token_hex(20)


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - now)
    except (TypeError, ValueError):
        return None


class CallbackDispatcher:
    """Sends Callback API requests for all communities. ``start`` before use, ``close`` after."""

    def __init__(
        self, config: SandboxConfig, state: SandboxState, faults: FaultBook, log: DeliveryLog,
        *, sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._config = config
        self._sleep = sleep  # the pauses between tries; tests record them instead
        self._state = state
        self._faults = faults
        self.log = log
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._handshake_rounds: dict[tuple[int, int], int] = {}

    async def start(self) -> None:
        # No per-host connection cap: VK sends a server's events in parallel.
        connector = aiohttp.TCPConnector(limit=0, limit_per_host=0)
        self._session = aiohttp.ClientSession(connector=connector)

    async def close(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def pending(self) -> int:
        """Handshakes and deliveries still in flight (or waiting for a retry)."""
        return len(self._tasks)

    def confirm(self, server: CallbackServer) -> None:
        """Start the confirmation handshake; the server is ``wait`` until it ends."""
        key = (server.group_id, server.id)
        handshake_round = self._handshake_rounds.get(key, 0) + 1
        self._handshake_rounds[key] = handshake_round
        server.status = ServerStatus.WAIT
        self._spawn(self._confirm(server, handshake_round))

    def emit(self, group_id: int, event_type: str, event_object: dict[str, Any]) -> str:
        """Send an event to every ``ok`` server of the community that enabled its type."""
        community = self._state.community(group_id)
        event_id = new_event_id()
        servers = [
            server
            for server in community.callback_servers.values()
            if server.status is ServerStatus.OK and server.wants(event_type)
        ]
        copies = 2 if servers and self._faults.take_duplicate() else 1
        for server in servers:
            payload: dict[str, Any] = {
                "type": event_type,
                "group_id": group_id,
                "event_id": event_id,
                "v": server.api_version,
                "object": event_object,
            }
            if server.secret_key:
                payload["secret"] = server.secret_key
            for _ in range(copies):
                delivery = self.log.add(Delivery(event_id, event_type, group_id, server.id))
                self._spawn(self._deliver(delivery, server, payload))
        logger.debug("event %s %s for group %d → %d server(s)", event_type, event_id,
                    group_id, len(servers) * copies)
        return event_id

    async def _confirm(self, server: CallbackServer, handshake_round: int) -> None:
        community = self._state.community(server.group_id)
        payload: dict[str, Any] = {
            "type": "confirmation",
            "group_id": server.group_id,
            "event_id": new_event_id(),
            "v": server.api_version,
        }
        if server.secret_key:
            payload["secret"] = server.secret_key
        status, body, _ = await self._post(server.url, payload, {})
        confirmed = status == 200 and body.strip() == community.confirmation_code
        if self._handshake_rounds.get((server.group_id, server.id)) != handshake_round:
            return  # the server was edited meanwhile; a newer handshake decides
        server.status = ServerStatus.OK if confirmed else ServerStatus.FAILED
        logger.info("callback server %d of group %d confirmation: %s (HTTP %s, %r)",
                    server.id, server.group_id, server.status, status, body[:100])

    async def _deliver(
        self, delivery: Delivery, server: CallbackServer, payload: dict[str, Any]
    ) -> None:
        retry = 0
        while True:
            headers = {"X-Retry-Counter": str(retry)} if retry else {}
            status, body, retry_after = await self._post(server.url, payload, headers)
            delivery.attempts.append(
                DeliveryAttempt(time.time(), status, retry or None, body[:_BODY_LIMIT])
            )
            if status == 200 and body == "ok":
                delivery.delivered = True
                return
            if retry >= len(RETRY_SCHEDULE_SECONDS):
                break
            delay = RETRY_SCHEDULE_SECONDS[retry] * self._config.retry_scale
            if status in RETRY_AFTER_STATUSES and retry_after is not None:
                delay = min(retry_after, self._config.retry_after_cap_seconds)
            await self._sleep(delay)
            retry += 1
            if not self._still_receiving(server):
                break
        delivery.gave_up = True
        logger.warning("gave up delivering %s %s to server %d of group %d after %d tries",
                       delivery.type, delivery.event_id, server.id, server.group_id,
                       len(delivery.attempts))

    def _still_receiving(self, server: CallbackServer) -> bool:
        community = self._state.communities.get(server.group_id)
        return (
            community is not None
            and community.callback_servers.get(server.id) is server
            and server.status is ServerStatus.OK
        )

    async def _post(
        self, url: str, payload: dict[str, Any], headers: dict[str, str]
    ) -> tuple[int | None, str, float | None]:
        """POST one Callback API request: (HTTP status or None, body or error, Retry-After)."""
        if self._session is None:
            raise RuntimeError("CallbackDispatcher.start() was not awaited")
        timeout = aiohttp.ClientTimeout(total=self._config.delivery_timeout_seconds)
        try:
            async with self._session.post(
                url,
                data=json.dumps(payload, ensure_ascii=False),
                headers={"Content-Type": "application/json", **headers},
                timeout=timeout,
            ) as response:
                body = await response.text(errors="replace")
                retry_after = parse_retry_after(response.headers.get("Retry-After"), time.time())
                return response.status, body, retry_after
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            return None, f"{type(exc).__name__}: {exc}", None

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            logger.error("callback task failed", exc_info=exc)
