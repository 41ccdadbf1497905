"""The services as real processes for the resilience scenarios, with every line they print kept.

Each service is ``python -m services.<name>`` started by the test
(:func:`tests.support.processes.start_service`, the launcher of :mod:`tools.processes`),
with an environment made from the test's :class:`~shared.settings.Settings` and its
stdout and stderr written to a file of the suite's :class:`LogBook`. Tests stop, kill
(``SIGKILL``) and restart them by the PID they started; nothing is ever looked up by name.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.settings import Settings
from tests.support.processes import start_service
from tools.processes import ChildProcess


@dataclass
class LogBook:
    """Where the suite's processes write, and the secrets that must never show up there."""

    directory: Path
    secrets: set[str] = field(default_factory=set)
    _numbers: Iterator[int] = field(default_factory=itertools.count)

    def new_log(self, name: str) -> Path:
        return self.directory / f"{next(self._numbers):04d}-{name}.log"

    def register(self, *values: str | None) -> None:
        """Remember tokens and secrets the suite used (short ones would match by chance)."""
        self.secrets.update(value for value in values if value and len(value) >= 8)

    def logs(self) -> list[Path]:
        return sorted(self.directory.glob("*.log"))


class ServiceGroup:
    """The processes one test started; all are stopped (by PID) when the test ends."""

    def __init__(self, logbook: LogBook) -> None:
        self.logbook = logbook
        self.processes: list[ChildProcess] = []

    async def start(self, name: str, settings: Settings, *, ready: bool = True,
                    **overrides: str) -> ChildProcess:
        """Start ``python -m services.<name>``; by default wait for its ``ready`` line."""
        service = start_service(name, settings, log_path=self.logbook.new_log(name), **overrides)
        self.processes.append(service)
        if ready:  # bounded generously: 4 processes importing at once on a busy 2-core machine
            await service.wait_for("ready", timeout=90)
        return service

    async def start_many(self, *specs: tuple[str, Settings]) -> list[ChildProcess]:
        """Start several services at once (imports dominate start-up; two cores share it)."""
        return list(await asyncio.gather(*(self.start(name, settings) for name, settings in specs)))

    def named(self, name: str) -> list[ChildProcess]:
        return [process for process in self.processes if process.name == name]

    def events(self, name: str, *events: str) -> list[dict[str, Any]]:
        """Log lines with these events from every process of service ``name``, alive or not."""
        return [line for process in self.named(name) for line in process.events(*events)]

    def texts(self) -> Iterable[str]:
        return (process.text() for process in self.processes)

    async def close(self) -> None:
        await asyncio.gather(*(process.stop() for process in self.processes),
                             return_exceptions=True)
        for process in self.processes:
            with contextlib.suppress(ProcessLookupError):
                await process.kill()
