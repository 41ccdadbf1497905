"""Turning a raw request body into a VK callback, with a one-line reason when it is not one."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError
from pydantic_core import PydanticSerializationError

CONFIRMATION = "confirmation"


class BadCallback(ValueError):
    """The body is not a VK callback; the message is safe to show (no secrets)."""


class IncomingCallback(BaseModel):
    """The envelope VK posts: ``{type, group_id, event_id, v, object, secret}``."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    type: StrictStr = Field(min_length=1, max_length=64)
    group_id: StrictInt = Field(gt=0, lt=2**63)
    event_id: StrictStr | None = Field(default=None, max_length=128)
    v: StrictStr | None = Field(default=None, max_length=16)
    object: dict[str, Any] | None = None
    secret: StrictStr | None = Field(default=None, max_length=256)


def parse_callback(body: bytes) -> IncomingCallback:
    """Parse and validate a callback body, or raise :class:`BadCallback`."""
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
        return callback
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
