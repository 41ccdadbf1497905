"""The consumer's handler: a plain typed function from ``ProjectUpdated`` to a log entry.

It knows nothing of RabbitMQ; :class:`shared.broker.Consumer` acks when it
returns and retries when it raises. Redeliveries are harmless: the log drops a
message it already holds (see :func:`~services.update_notifier.update_log.dedupe_key`).
"""

from __future__ import annotations

import structlog

from services.update_notifier.update_log import UpdateLog
from shared.broker import Handler
from shared.messages import ProjectUpdated

log = structlog.get_logger(__name__)


def recorder(update_log: UpdateLog) -> Handler[ProjectUpdated]:
    """The handler appending each update to ``update_log``."""

    async def record_update(update: ProjectUpdated) -> None:
        with structlog.contextvars.bound_contextvars(correlation_id=update.correlation_id):
            appended = await update_log.append(update)
            if appended.duplicate:
                log.info("project_update_duplicate", project_id=update.project_id,
                         seq=appended.seq, correlation_id=update.correlation_id)
                return
            log.info("project_update_recorded", project_id=update.project_id, seq=appended.seq,
                     correlation_id=update.correlation_id, reason=update.reason)

    return record_update
