"""``ProjectUpdated`` announcements, sent without holding up publishing.

Each change in ``system_posts`` is announced once the database write is done. The
message is published in the background with the broker's confirms and retried with
the project's backoff a few times; if RabbitMQ stays unreachable it is given up
(logged and counted): an announcement is a hint to refresh the UI, while the post's
state itself is safe in MongoDB.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

import structlog

from services.post_tracker import metrics
from shared.messages import ProjectUpdated, UpdateReason
from shared.retry import backoff_seconds
from shared.tasks import cancel_and_wait

log = structlog.get_logger(__name__)


class UpdatePublisher(Protocol):
    """What the announcer needs of :class:`shared.broker.Broker`."""

    async def publish_update(self, update: ProjectUpdated, *, timeout: float = 5.0) -> None: ...


class Announcer:
    def __init__(self, broker: UpdatePublisher, *, attempts: int = 4,
                 timeout_seconds: float = 5.0) -> None:
        self._broker = broker
        self._attempts = attempts
        self._timeout = timeout_seconds
        self._in_flight: set[asyncio.Task[None]] = set()

    def announce(self, project_id: str, correlation_id: str) -> None:
        """Publish ``ProjectUpdated(project_id, reason="system_post")`` in the background."""
        update = ProjectUpdated(project_id=project_id, reason=UpdateReason.SYSTEM_POST,
                                correlation_id=correlation_id)
        task = asyncio.create_task(self._publish(update))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    async def _publish(self, update: ProjectUpdated) -> None:
        for attempt in range(1, self._attempts + 1):
            try:
                await self._broker.publish_update(update, timeout=self._timeout)
                return
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                if attempt == self._attempts:
                    metrics.ANNOUNCE_FAILURES.inc()
                    log.error("announce_failed", project_id=update.project_id,
                              correlation_id=update.correlation_id, error=error)
                    return
                log.warning("announce_retry", project_id=update.project_id, error=error,
                            attempt=attempt)
                await asyncio.sleep(backoff_seconds(attempt))

    async def drain(self, timeout: float) -> None:
        """Wait for announcements in flight (up to ``timeout``), then cancel the rest."""
        if not self._in_flight:
            return
        _, pending = await asyncio.wait(set(self._in_flight), timeout=timeout)
        await cancel_and_wait(*pending)
