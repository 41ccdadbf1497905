"""Plain-text tables and cells for the terminal."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

EMPTY = "-"


def cell(value: object) -> str:
    """One value as shown in a table: UTC times to the second, missing as ``-``, one line."""
    if value is None or value == "":
        return EMPTY
    if isinstance(value, datetime):
        moment = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.strftime("%Y-%m-%d %H:%M:%SZ")
    return " ".join(str(value).split())


def shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def render(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """Columns padded to their widest cell, separated by two spaces."""
    lines = [[str(header) for header in headers], *([cell(value) for value in row] for row in rows)]
    widths = [max(len(line[index]) for line in lines) for index in range(len(headers))]
    return "\n".join("  ".join(text.ljust(width) for text, width in zip(line, widths, strict=True))
                     .rstrip() for line in lines)


def presence(value: object) -> str:
    """``set`` or ``unset``: how tokens, secrets and codes are shown, never their value."""
    return "set" if value else "unset"
