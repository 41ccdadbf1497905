"""Messages that travel through RabbitMQ, as pydantic models serialised to JSON."""

from __future__ import annotations

import itertools
import os
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar
from uuid import uuid4

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from shared.clock import utc_now
from shared.mongo import ContentType


class _CorrelationIds:
    """32 hex digits, unique: a random prefix per process (renewed in a forked child) and
    a counter — a uuid4 per callback was 3 % of the gateway's CPU (bench/gateway.py)."""

    def __init__(self) -> None:
        self.renew()
        os.register_at_fork(after_in_child=self.renew)

    def renew(self) -> None:
        self._prefix = uuid4().hex[:16]
        self._counter = itertools.count()

    def __call__(self) -> str:
        return f"{self._prefix}{next(self._counter) & 0xFFFF_FFFF_FFFF_FFFF:016x}"


new_correlation_id = _CorrelationIds()


class BrokerMessage(BaseModel):
    """Base of every message: immutable, strict about unknown shapes, versioned by kind."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    kind: ClassVar[str]
    correlation_id: str = Field(default_factory=new_correlation_id, min_length=1)


class CallbackEvent(BrokerMessage):
    """A VK Callback API event accepted by the gateway for a known project."""

    kind: ClassVar[str] = "callback_event"
    type: str = Field(min_length=1)
    group_id: int = Field(gt=0)
    event_id: str | None = None
    v: str | None = None
    object: dict[str, Any] | None = None
    project_id: str = Field(min_length=1)
    received_at: AwareDatetime
    retry_counter: int | None = None


class UpdateReason(StrEnum):
    """Why a project changed: ``ProjectUpdated.reason``, stored as the update log's ``reason``."""

    REFRESH = "refresh"  # a refresh changed the cache or its outcome
    REFRESH_FAILED = "refresh_failed"  # a refresh failed permanently (``refresh_status``)
    SYSTEM_POST = "system_post"  # the post tracker (or the ops CLI) changed a system post


class ProjectUpdated(BrokerMessage):
    """A project's data changed; the notifier tells the frontend."""

    kind: ClassVar[str] = "project_updated"
    project_id: str = Field(min_length=1)
    content_types: tuple[ContentType, ...] = ()
    # An UpdateReason; read as text, so a reason only a newer producer knows still passes.
    reason: str = Field(min_length=1)
    occurred_at: AwareDatetime = Field(default_factory=utc_now)


def callback_event_json(*, correlation_id: str, type: str, group_id: int, event_id: str | None,
                        v: str | None, object_json: bytes, project_id: str,
                        received_at: datetime, retry_counter: int | None) -> bytes:
    """A :class:`CallbackEvent` serialised without building the model: the gateway's hot
    path, whose fields are validated already and whose ``object`` is JSON already.
    ``CallbackEvent.model_validate_json`` reads it back (tested)."""
    return orjson.dumps({
        "correlation_id": correlation_id, "type": type, "group_id": group_id,
        "event_id": event_id, "v": v, "object": orjson.Fragment(object_json),
        "project_id": project_id, "received_at": received_at, "retry_counter": retry_counter,
    })
