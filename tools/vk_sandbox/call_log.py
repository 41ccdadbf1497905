"""The record of VK API calls the sandbox received, for tests to inspect."""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class ApiCall:
    method: str
    token_kind: str  # "user" | "community" | "unknown"
    params: dict[str, str]  # never holds access_token
    at: float  # unix time the request arrived
    error_code: int | None = None  # VK error code of the reply, None when it succeeded
    http_status: int = 200  # not 200 only for injected http_status faults
    via_execute: bool = False  # an API.* call inside an execute code

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class CallLog:
    def __init__(self, capacity: int) -> None:
        self._calls: deque[ApiCall] = deque(maxlen=capacity)

    def record(self, call: ApiCall) -> ApiCall:
        self._calls.append(call)
        return call

    def calls(self, method: str | None = None) -> list[ApiCall]:
        return [call for call in self._calls if method is None or call.method == method]

    def clear(self) -> None:
        self._calls.clear()
