"""What a resilience scenario is given: its version (short or long), and where its measured
figures go."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Mode:
    """Short (default run) or long version of a scenario."""

    long: bool

    def pick(self, short: T, long: T) -> T:
        return long if self.long else short


class Figures:
    """Measured numbers of each scenario, printed at the end (and kept as JSON lines)."""

    def __init__(self, path: Path, test: str) -> None:
        self._path = path
        self._test = test

    def record(self, **numbers: Any) -> None:
        with self._path.open("a") as out:
            out.write(json.dumps({"test": self._test, **numbers}, default=str) + "\n")
