"""The ``POST /api/getUpdates`` body: parsed into one of three requests, or refused in one line.

* empty body or ``{}``               → :class:`Legacy` (the original frontend contract);
* ``{"cursor": null}`` or ``""``     → :class:`StartChain`;
* ``{"cursor": "v1.42"}``            → :class:`Resume`.

Fields other than ``cursor`` are ignored (a frontend may add a client version or a
timestamp without losing its updates); ``cursor`` itself is checked strictly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, ValidationError

from services.update_notifier.cursor import InvalidCursor, parse_cursor

MAX_BODY_BYTES = 16 * 1024
# The body of nearly every poll, ``{"cursor": "v1.N"}`` (any JSON whitespace), matched
# without a JSON parser and a model: this is valid JSON that the full path below would
# turn into the same ``Resume``. Anything else takes the full path.
_WS = rb"[ \t\n\r]*"
_RESUME_BODY = re.compile(_WS + rb'\{' + _WS + rb'"cursor"' + _WS + rb":" + _WS
                          + rb'"v1\.(0|[1-9][0-9]{0,17})"' + _WS + rb"\}" + _WS)


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
    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)

    cursor: str | None = None


def parse_get_updates(body: bytes) -> GetUpdatesRequest:
    """The request a body makes; :class:`BadRequest` with the reason if it makes none."""
    if (resume := _RESUME_BODY.fullmatch(body)) is not None:
        return Resume(int(resume.group(1)))
    return parse_in_full(body)


def parse_in_full(body: bytes) -> GetUpdatesRequest:
    """:func:`parse_get_updates` without the shortcut: the JSON parser and the model."""
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
