"""Faults tests inject through ``POST /_sandbox/faults``, and the book that applies them."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter


class _FaultSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorFault(_FaultSpec):
    """The next ``count`` calls of ``method`` (any method if null) fail with VK error ``code``."""

    kind: Literal["error"]
    method: str | None = None
    code: int = Field(gt=0)
    count: int = Field(default=1, ge=1)


class LatencyFault(_FaultSpec):
    """Every call of ``method`` (any method if null) is answered ``seconds`` later; with
    ``count``, only the next ``count`` calls."""

    kind: Literal["latency"]
    method: str | None = None
    seconds: float = Field(ge=0, le=600)
    count: int | None = Field(default=None, ge=1)


class HttpStatusFault(_FaultSpec):
    """The next ``count`` calls get HTTP ``status`` with a non-JSON (HTML) body."""

    kind: Literal["http_status"]
    method: str | None = None
    status: int = Field(ge=400, le=599)
    count: int = Field(default=1, ge=1)


class MalformedFault(_FaultSpec):
    """The next ``count`` calls get HTTP 200 with a truncated JSON body."""

    kind: Literal["malformed"]
    method: str | None = None
    count: int = Field(default=1, ge=1)


class HidePostsFault(_FaultSpec):
    """Posts made by ``wall.post`` on ``group_id`` stay out of wall.get/getById for
    ``seconds`` (forever if null): VK's eventual consistency, exaggerated."""

    kind: Literal["hide_posts"]
    group_id: int
    seconds: float | None = Field(default=None, ge=0)


class DuplicateCallbacksFault(_FaultSpec):
    """The next ``count`` events (that go to any server) are delivered twice, with the
    same ``event_id``, to every server that gets them."""

    kind: Literal["duplicate_callbacks"]
    count: int = Field(default=1, ge=1)


Fault = Annotated[
    ErrorFault | LatencyFault | HttpStatusFault | MalformedFault | HidePostsFault
    | DuplicateCallbacksFault,
    Field(discriminator="kind"),
]
FAULT_ADAPTER: TypeAdapter[Fault] = TypeAdapter(Fault)

_CountedFault = ErrorFault | HttpStatusFault | MalformedFault | DuplicateCallbacksFault


class FaultBook:
    """Active faults. Counted faults are used up one matching call (or event) at a time."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> None:
        self._faults.append(fault)

    def clear(self) -> None:
        self._faults.clear()

    def to_json(self) -> list[dict[str, Any]]:
        return [fault.model_dump() for fault in self._faults]

    def take_error(self, method: str) -> int | None:
        fault = self._take(ErrorFault, method)
        return fault.code if isinstance(fault, ErrorFault) else None

    def take_http_status(self, method: str) -> int | None:
        fault = self._take(HttpStatusFault, method)
        return fault.status if isinstance(fault, HttpStatusFault) else None

    def take_malformed(self, method: str) -> bool:
        return self._take(MalformedFault, method) is not None

    def take_duplicate(self) -> bool:
        return self._take(DuplicateCallbacksFault, None) is not None

    def latency(self, method: str) -> float:
        """The delay of this call of ``method`` (counted latency faults are used up)."""
        delay = 0.0
        for fault in list(self._faults):
            if isinstance(fault, LatencyFault) and fault.method in (None, method):
                delay += fault.seconds
                if fault.count is not None:
                    fault.count -= 1
                    if fault.count == 0:
                        self._faults.remove(fault)
        return delay

    def hide_seconds(self, group_id: int) -> float | None:
        """How long a new wall.post on ``group_id`` stays hidden (inf: forever), if at all."""
        hidden: float | None = None
        for fault in self._faults:
            if isinstance(fault, HidePostsFault) and fault.group_id == group_id:
                seconds = math.inf if fault.seconds is None else fault.seconds
                hidden = max(hidden or 0.0, seconds)
        return hidden

    def _take(self, kind: type[_CountedFault], method: str | None) -> _CountedFault | None:
        for fault in self._faults:
            if not isinstance(fault, kind):
                continue
            if method is not None and getattr(fault, "method", None) not in (None, method):
                continue
            fault.count -= 1
            if fault.count == 0:
                self._faults.remove(fault)
            return fault
        return None
