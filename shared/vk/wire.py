"""What a VK call puts on the wire and what comes back: the form values it sends, and
the answer decoded into its JSON body or the typed :class:`~shared.vk.errors.VkError`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from enum import Enum
from typing import Any

from shared.vk.errors import (
    VkError,
    VkHttpError,
    VkMalformedResponse,
    VkUnexpectedStatus,
    error_from_payload,
)
from shared.vk.tokens import redact_token

_BODY_SNIPPET_CHARS = 200


def form_value(value: Any) -> str:
    """A parameter as VK reads it from a form: flags as 1/0, lists comma-separated."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, datetime):
        return str(int(value.timestamp()))
    if isinstance(value, list | tuple):
        return ",".join(form_value(item) for item in value)
    if isinstance(value, Mapping):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


def outcome_label(exc: VkError) -> str:
    """A bounded label: VK's error code, or the kind of failure."""
    return str(exc.code) if exc.code is not None else type(exc).__name__


def describe_failure(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def decode_answer(method: str, token: str, status: int, reason: str, raw: bytes) -> dict[str, Any]:
    """The answer's JSON body, or the typed error it stands for."""
    snippet = redact_token(raw[:_BODY_SNIPPET_CHARS].decode(errors="replace"), token)
    if status >= 500 or status == 429:
        raise VkHttpError(status, reason or snippet, method)
    if status != 200:
        raise VkUnexpectedStatus(status, reason or snippet, method)
    try:
        body = json.loads(raw)
    except ValueError:
        raise VkMalformedResponse(f"not JSON: {snippet!r}", method) from None
    if not isinstance(body, dict):
        raise VkMalformedResponse(f"not a JSON object: {snippet!r}", method)
    if "error" in body:
        raise error_from_payload(body["error"], method, token)
    if "response" not in body:
        raise VkMalformedResponse(f"no response in {snippet!r}", method)
    return body


def int_field(response: Any, name: str, method: str) -> int:
    value = response.get(name) if isinstance(response, dict) else None
    if not isinstance(value, int) or isinstance(value, bool):
        raise VkMalformedResponse(f"no integer {name} in the answer", method)
    return value
