"""Global variables: ``{{name}}`` placeholders in a post's text, replaced before sending.

Values come from ``global_variables``: documents with ``project_id`` null apply to
every project, and a project's own variable of the same name wins. Substitution is a
single pass: a value that itself contains ``{{...}}`` is inserted as written, never
expanded again. A placeholder naming no variable stays exactly as written and is
reported, so the caller can log it with the post's id.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# ``{{name}}``, ``{{ name }}``: spaces inside the braces are allowed and ignored.
PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")


@dataclass(frozen=True, slots=True)
class Substitution:
    """The text to send and the placeholders left in it (names, in order, once each)."""

    text: str
    unknown: tuple[str, ...] = ()


def _value(raw: Any) -> str:
    return "" if raw is None else str(raw)


def merge_variables(documents: Iterable[Mapping[str, Any]], project_id: str) -> dict[str, str]:
    """Name → value for ``project_id``: global values, overridden by the project's own.

    Documents of other projects are ignored, so the caller may pass a broad query's result.
    """
    global_values: dict[str, str] = {}
    own_values: dict[str, str] = {}
    for document in documents:
        name = str(document.get("name") or "").strip()
        if not name:
            continue
        owner = document.get("project_id")
        if owner is None:
            global_values[name] = _value(document.get("value"))
        elif str(owner) == project_id:
            own_values[name] = _value(document.get("value"))
    return {**global_values, **own_values}


def substitute(text: str, variables: Mapping[str, str]) -> Substitution:
    """Replace each known ``{{name}}`` by its value; keep unknown ones as written."""
    unknown: dict[str, None] = {}

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in variables:
            return variables[name]
        unknown[name] = None
        return match.group(0)

    return Substitution(PLACEHOLDER.sub(replace, text), tuple(unknown))
