"""A VK method's request parameters (all strings on the wire) read as typed values."""

from __future__ import annotations

from collections.abc import Mapping

from .errors import invalid_param, missing_param


class Params:
    """Typed access to parameters; a missing or malformed one is VK error 100."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self.values = dict(values)

    def __contains__(self, name: str) -> bool:
        return name in self.values and self.values[name] != ""

    def text(self, name: str, default: str | None = None) -> str | None:
        value = self.values.get(name)
        return value if value not in (None, "") else default

    def required_text(self, name: str) -> str:
        value = self.text(name)
        if value is None:
            raise missing_param(name)
        return value

    def integer(self, name: str, default: int | None = None) -> int | None:
        value = self.text(name)
        if value is None:
            return default
        try:
            return int(value)
        except ValueError:
            raise invalid_param(name, "not integer") from None

    def required_integer(self, name: str) -> int:
        value = self.integer(name)
        if value is None:
            raise missing_param(name)
        return value

    def flag(self, name: str) -> bool:
        """VK flags are 1/0 (also accepted: true/false)."""
        value = (self.text(name) or "0").lower()
        if value in ("1", "true"):
            return True
        if value in ("0", "false"):
            return False
        raise invalid_param(name, "should be 0 or 1")

    def integers(self, name: str) -> list[int] | None:
        value = self.text(name)
        if value is None:
            return None
        try:
            return [int(item) for item in value.split(",") if item.strip()]
        except ValueError:
            raise invalid_param(name, "should be a list of integers") from None
