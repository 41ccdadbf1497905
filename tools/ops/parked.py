"""A dead-lettered ("parked") message as an operator reads it.

Two ways into a DLQ, both described here:

* the consumer parks it (:meth:`shared.broker.Consumer._dead_letter`): headers
  ``x-dead-letter-reason``, ``x-original-queue`` and ``x-dead-lettered-at``;
* the broker does (a quorum queue's delivery limit): its ``x-death`` header says which
  queue, why (``delivery_limit``, ``rejected``, …) and when.

The consumer parks the events of a gateway batch one by one, so a parked message is
one event — except a whole batch the broker parked itself: its events are listed
together (``batch of N``) and replayed together.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aio_pika.abc import AbstractIncomingMessage

from shared.broker import BATCH, ORIGINAL_QUEUE_HEADER, REASON_HEADER
from shared.logging import redact_text
from shared.topology import ConsumingQueue

DEAD_LETTERED_AT_HEADER = "x-dead-lettered-at"
REPLAYED_AT_HEADER = "x-replayed-at"
REPLAY_COUNT_HEADER = "x-replay-count"


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return None if value is None else str(value)


def _first_death(headers: dict[str, Any]) -> dict[str, Any]:
    deaths = headers.get("x-death")
    if isinstance(deaths, list | tuple) and deaths and isinstance(deaths[0], dict):
        return deaths[0]
    return {}


def _moment(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    text = _text(value)
    if not text:
        return None
    try:
        return _moment(datetime.fromisoformat(text))
    except ValueError:
        return None


def _body_correlation_id(body: bytes) -> str | None:
    try:
        decoded = json.loads(body)
    except ValueError:
        return None
    value = decoded.get("correlation_id") if isinstance(decoded, dict) else None
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True, slots=True)
class Parked:
    message: AbstractIncomingMessage
    queue: ConsumingQueue  # the consuming queue whose DLQ holds the message
    reason: str
    original_queue: str
    dead_lettered_at: datetime | None
    correlation_id: str | None
    replays: int  # how often `dlq replay` sent it back already

    @classmethod
    def of(cls, message: AbstractIncomingMessage, queue: ConsumingQueue) -> Parked:
        headers = dict(message.headers or {})
        death = _first_death(headers)
        reason = _text(headers.get(REASON_HEADER))
        if reason is None:
            death_reason = _text(death.get("reason"))
            reason = f"broker: {death_reason}" if death_reason else "unknown"
        replays = headers.get(REPLAY_COUNT_HEADER)
        return cls(
            message=message, queue=queue, reason=redact_text(reason),
            original_queue=(_text(headers.get(ORIGINAL_QUEUE_HEADER)) or _text(death.get("queue"))
                            or queue.name),
            dead_lettered_at=(_moment(headers.get(DEAD_LETTERED_AT_HEADER))
                              or _moment(death.get("time")) or _moment(message.timestamp)),
            correlation_id=(message.correlation_id
                            or _body_correlation_id(message.body.split(b"\n")[0])),
            replays=replays if isinstance(replays, int) else 0,
        )

    @property
    def events(self) -> list[bytes]:
        """The serialised messages it holds: one, or a batch's."""
        if self.message.content_type == BATCH:
            return self.message.body.split(b"\n")
        return [self.message.body]

    def preview(self, width: int) -> str:
        """The start of the body on one line (a JSON object without the correlation id,
        shown apart; a batch as ``batch of N:`` and its first event), tokens masked."""
        events = self.events
        text = events[0].decode(errors="replace")
        try:
            decoded = json.loads(text)
        except ValueError:
            decoded = None
        if isinstance(decoded, dict):
            decoded.pop("correlation_id", None)
            text = json.dumps(decoded, ensure_ascii=False, separators=(",", ":"))
        text = " ".join(redact_text(text).split())
        if len(events) > 1:
            text = f"batch of {len(events)}: {text}"
        return text if len(text) <= width else text[:width - 1] + "…"
