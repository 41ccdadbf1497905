"""Global variables: ``{{name}}`` placeholders in a post's text, replaced before sending.

Values come from ``global_variables``: documents with ``project_id`` null apply to
every project, and a project's own variable of the same name wins. Substitution is a
single pass: a value that itself contains ``{{...}}`` is inserted as written, never
expanded again. A ``null`` value is empty text; a number is written as the user wrote
it (``100``, not ``100.0``, for the double a JSON pipeline stores).

A placeholder naming no variable is reported in :attr:`Substitution.unknown`; such a
post is not published (it becomes ``error: unknown variable(s): …``): a literal
``{{price}}`` on a brand's public wall is worse than a held post the user sees and fixes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from bson import Decimal128

# ``{{name}}``, ``{{ name }}``: spaces inside the braces are allowed and ignored.
PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")


@dataclass(frozen=True, slots=True)
class Substitution:
    """The text to send and the placeholders left in it (names, in order, once each)."""

    text: str
    unknown: tuple[str, ...] = ()


def value_text(raw: Any) -> str:
    """A variable's value as it appears in a post."""
    if raw is None:
        return ""
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, Decimal128):
        raw = raw.to_decimal()
    if isinstance(raw, float) and raw.is_integer():
        return str(int(raw))
    if isinstance(raw, Decimal):
        return format(raw.normalize() if raw == raw.to_integral_value() else raw, "f")
    return str(raw)


def same_id(a: Any, b: Any) -> bool:
    """Ids equal as MongoDB compares them: numbers by value, other types only to their own."""
    def number(value: Any) -> bool:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if number(a) and number(b):
        return bool(a == b)
    return type(a) is type(b) and bool(a == b)


def merge_variables(documents: Iterable[Mapping[str, Any]], project_id: Any) -> dict[str, str]:
    """Name → value for ``project_id``: global values, overridden by the project's own.

    Documents of other projects are ignored, so the caller may pass a broad query's
    result. Project ids are compared as the values they are (``5`` is not ``"5"``).
    """
    global_values: dict[str, str] = {}
    own_values: dict[str, str] = {}
    for document in documents:
        name = document.get("name")
        name = name.strip() if isinstance(name, str) else ""
        if not name:
            continue
        owner = document.get("project_id")
        if owner is None:
            global_values[name] = value_text(document.get("value"))
        elif same_id(owner, project_id):
            own_values[name] = value_text(document.get("value"))
    return {**global_values, **own_values}


def substitute(text: str, variables: Mapping[str, str]) -> Substitution:
    """Replace each known ``{{name}}`` by its value; report the unknown ones."""
    unknown: dict[str, None] = {}

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in variables:
            return variables[name]
        unknown[name] = None
        return match.group(0)

    return Substitution(PLACEHOLDER.sub(replace, text), tuple(unknown))
