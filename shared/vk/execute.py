"""Batching VK calls through the ``execute`` method.

One ``execute`` request runs up to 25 API calls and counts as one request against
the token's rate limit. The code sent is ``return [API.m1({...}), API.m2({...})];``
with each call's parameters as a JSON object. VK answers with one result per call,
``false`` for a call that failed, and lists the failures, in order, in
``execute_errors``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from shared.vk.errors import VkError, error_from_payload

MAX_CALLS_PER_EXECUTE = 25
# A method name goes into the code verbatim; anything else could inject VKScript.
_METHOD_NAME = re.compile(r"^[a-z]+\.[A-Za-z]+$")


@dataclass(frozen=True, slots=True)
class VkCall:
    """One API call to run inside ``execute``: the method and its parameters."""

    method: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _METHOD_NAME.fullmatch(self.method):
            raise ValueError(f"not a VK method name: {self.method!r}")
        if self.method == "execute" or self.method.startswith("execute."):
            raise ValueError("execute cannot be nested")


def _json_value(value: Any) -> Any:
    """A parameter as VKScript takes it: enums by value, sequences as JSON arrays."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(key): _json_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(item) for item in value]
    return value


def call_expression(call: VkCall) -> str:
    """``API.wall.get({"owner_id":-1})``; ``None`` parameters are left out."""
    params = {key: _json_value(value) for key, value in call.params.items() if value is not None}
    return f"API.{call.method}({json.dumps(params, ensure_ascii=False, separators=(',', ':'))})"


def execute_code(calls: Sequence[VkCall]) -> str:
    """The VKScript returning the results of ``calls`` (at most 25) as one array."""
    if not 1 <= len(calls) <= MAX_CALLS_PER_EXECUTE:
        raise ValueError(f"execute takes 1..{MAX_CALLS_PER_EXECUTE} calls, got {len(calls)}")
    return "return [" + ",".join(call_expression(call) for call in calls) + "];"


def batches(calls: Sequence[VkCall]) -> Iterator[Sequence[VkCall]]:
    """``calls`` in consecutive groups of at most 25, order kept."""
    for start in range(0, len(calls), MAX_CALLS_PER_EXECUTE):
        yield calls[start:start + MAX_CALLS_PER_EXECUTE]


def match_results(calls: Sequence[VkCall], response: Any, execute_errors: Any,
                  token: str | None = None) -> list[Any | VkError]:
    """Pair each call with its result, or with its :class:`VkError` if it failed.

    A failed call's result is ``false``; its error is the next unused entry of
    ``execute_errors`` naming the same method (VK lists failures in call order).
    A ``false`` with no such entry is kept as a genuine ``false`` result.
    """
    if not isinstance(response, list) or len(response) != len(calls):
        raise ValueError(f"execute returned {type(response).__name__} for {len(calls)} calls")
    pending = list(execute_errors) if isinstance(execute_errors, list) else []
    matched: list[Any | VkError] = []
    for call, result in zip(calls, response, strict=True):
        if result is False:
            index = next((i for i, error in enumerate(pending)
                          if isinstance(error, dict) and error.get("method") == call.method), None)
            if index is not None:
                matched.append(error_from_payload(pending.pop(index), call.method, token))
                continue
        matched.append(result)
    return matched
