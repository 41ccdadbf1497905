"""Turning a raw request body into a VK callback, with a one-line reason when it is not one.

:class:`IncomingCallback` (pydantic) is the contract. Every callback is parsed once
(orjson) and checked by :func:`_fast_callback`, plain type and length checks that
accept only what the model accepts; the ``object`` is serialised once, here, and
travels on as those bytes. Anything the fast path does not accept — and bodies orjson
reads differently from ``json`` (integer literals beyond 64 bits, which it turns into
floats) — takes the model's path, which gives the exact answer and reason. A
property-based test (``tests/callback_gateway/test_parsing.py``) holds the two paths
to the same accepted values and the same 400 reasons.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError
from pydantic_core import PydanticSerializationError

CONFIRMATION = "confirmation"
# orjson reads an integer literal beyond u64 / i64 (19+ digits) as a float; json does not.
_LONG_INTEGER = re.compile(rb"\d{19}")
_MAX_GROUP_ID = 2**63


class BadCallback(ValueError):
    """The body is not a VK callback; the message is safe to show (no secrets)."""


class IncomingCallback(BaseModel):
    """The envelope VK posts: ``{type, group_id, event_id, v, object, secret}``."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    type: StrictStr = Field(min_length=1, max_length=64)
    group_id: StrictInt = Field(gt=0, lt=_MAX_GROUP_ID)
    event_id: StrictStr | None = Field(default=None, max_length=128)
    v: StrictStr | None = Field(default=None, max_length=16)
    object: dict[str, Any] | None = None
    secret: StrictStr | None = Field(default=None, max_length=256)


@dataclass(frozen=True, slots=True)
class Callback:
    """A valid callback, with its ``object`` serialised already (JSON bytes, ``null`` if absent)."""

    type: str
    group_id: int
    event_id: str | None
    v: str | None
    object: dict[str, Any] | None
    secret: str | None
    object_json: bytes


def parse_callback(body: bytes) -> Callback:
    """Parse and validate a callback body, or raise :class:`BadCallback`."""
    if _LONG_INTEGER.search(body) is None:
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            pass  # the model's path gives the reason
        else:
            if (fast := _fast_callback(payload)) is not None:
                return fast
    return _model_callback(body)


def _text(payload: dict[str, Any], key: str, max_length: int) -> tuple[bool, str | None]:
    value = payload.get(key)
    return value is None or (type(value) is str and len(value) <= max_length), value


def _fast_callback(payload: Any) -> Callback | None:
    """The callback if every field is plainly valid; None means "ask the model"."""
    if type(payload) is not dict:
        return None
    kind, group_id, payload_object = payload.get("type"), payload.get("group_id"), payload.get("object")
    if type(kind) is not str or not 0 < len(kind) <= 64:
        return None
    if type(group_id) is not int or not 0 < group_id < _MAX_GROUP_ID:
        return None
    if payload_object is not None and type(payload_object) is not dict:
        return None
    event_ok, event_id = _text(payload, "event_id", 128)
    v_ok, v = _text(payload, "v", 16)
    secret_ok, secret = _text(payload, "secret", 256)
    if not (event_ok and v_ok and secret_ok):
        return None
    try:
        object_json = orjson.dumps(payload_object)
    except orjson.JSONEncodeError:  # nested deeper than orjson writes; the model may still
        return None
    return Callback(kind, group_id, event_id, v, payload_object, secret, object_json)


def _model_callback(body: bytes) -> Callback:
    """The model's path: ``json`` + :class:`IncomingCallback`, with its reasons."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as exc:
        # ValueError: JSONDecodeError, UnicodeDecodeError, and an integer literal longer
        # than Python converts (4300 digits).
        raise BadCallback(f"body is not valid JSON: {type(exc).__name__}") from None
    if not isinstance(payload, dict):
        raise BadCallback("body must be a JSON object")
    try:
        callback = IncomingCallback.model_validate(payload)
        # The event travels on as JSON: what cannot be written back (a lone surrogate,
        # nesting deeper than the serialiser allows) is refused here, not with a 500.
        callback.model_dump_json()
        object_json = callback.model_dump_json(include={"object"})
    except PydanticSerializationError:
        raise BadCallback("object cannot be re-encoded (invalid unicode or nested too deeply)"
                          ) from None
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "body"
        # Only the field name and pydantic's message: never echo input (it may be the secret).
        raise BadCallback(f"{field}: {first['msg']}") from None
    except RecursionError:
        raise BadCallback("body is nested too deeply") from None
    # {"object":<json>} → <json>: the model's own serialisation of the object.
    return Callback(callback.type, callback.group_id, callback.event_id, callback.v,
                    callback.object, callback.secret,
                    object_json.encode()[len('{"object":'):-1])
