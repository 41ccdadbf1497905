"""The ``POST /api/getUpdates`` body: parsed into one of three requests, or refused in one line.

* empty body or ``{}``               → :class:`Legacy` (the original frontend contract);
* ``{"cursor": null}`` or ``""``     → :class:`StartChain`;
* ``{"cursor": "v1.42"}``            → :class:`Resume`.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, ValidationError

from services.update_notifier.cursor import InvalidCursor, parse_cursor

MAX_BODY_BYTES = 16 * 1024


class BadRequest(ValueError):
    """The body is refused; ``str()`` is the one-line reason for the client."""


@dataclass(frozen=True, slots=True)
class Legacy:
    pass


@dataclass(frozen=True, slots=True)
class StartChain:
    pass


@dataclass(frozen=True, slots=True)
class Resume:
    after: int


GetUpdatesRequest = Legacy | StartChain | Resume


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    cursor: str | None = None


def parse_get_updates(body: bytes) -> GetUpdatesRequest:
    if not body.strip():
        return Legacy()
    try:
        parsed = _Body.model_validate_json(body)
    except ValidationError as exc:
        raise BadRequest(_one_line(exc)) from None
    if "cursor" not in parsed.model_fields_set:
        return Legacy()
    if not parsed.cursor:
        return StartChain()
    try:
        return Resume(parse_cursor(parsed.cursor))
    except InvalidCursor as exc:
        raise BadRequest(str(exc)) from None


def _one_line(error: ValidationError) -> str:
    first = error.errors(include_url=False)[0]
    if first["type"] == "json_invalid":
        return "body is not valid JSON"
    where = ".".join(str(part) for part in first["loc"])
    message = f"{where}: {first['msg']}" if where else f"body: {first['msg']}"
    return " ".join(message.split())
