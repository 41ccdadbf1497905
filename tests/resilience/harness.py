"""The services as real processes for the resilience scenarios, with every line they print kept.

Each service is ``python -m services.<name>`` started by the test, with an environment
made from the test's :class:`~shared.settings.Settings` (every field, as the service
would read it) and its stdout and stderr written to a file of the suite's
:class:`LogBook`. Tests stop, kill (``SIGKILL``) and restart them by the PID they
started; nothing is ever looked up by name.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.settings import Settings
from tests.support.environment import service_environment
from tests.support.waiting import eventually

ROOT = Path(__file__).resolve().parents[2]


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


def parse_lines(text: str) -> list[dict[str, Any]]:
    """The JSON log lines of a text (library lines that are not JSON are skipped)."""
    lines: list[dict[str, Any]] = []
    for raw in text.splitlines():
        try:
            line = json.loads(raw)
        except ValueError:
            continue
        if isinstance(line, dict):
            lines.append(line)
    return lines


class ServiceProcess:
    """One ``python -m services.<name>`` process this test started."""

    def __init__(self, name: str, process: asyncio.subprocess.Process, log_path: Path) -> None:
        self.name = name
        self.process = process
        self.log_path = log_path

    def __repr__(self) -> str:
        return f"ServiceProcess({self.name}, pid={self.pid}, returncode={self.returncode})"

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        return self.process.returncode

    @property
    def alive(self) -> bool:
        return self.process.returncode is None

    def text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def lines(self) -> list[dict[str, Any]]:
        return parse_lines(self.text())

    def events(self, *names: str) -> list[dict[str, Any]]:
        wanted = set(names)
        return [line for line in self.lines() if line.get("event") in wanted]

    async def wait_for(self, event: str, *, count: int = 1, timeout: float = 20) -> dict[str, Any]:
        """The ``count``-th log line with this event; fails at once if the process exits."""
        async def probe() -> dict[str, Any] | None:
            found = self.events(event)
            if len(found) >= count:
                return found[count - 1]
            if not self.alive:
                raise AssertionError(f"{self} exited before logging {event!r}:\n{self.text()[-3000:]}")
            return None
        return await eventually(probe, timeout=timeout, interval=0.05,
                                what=f"{self.name} (pid {self.pid}) to log {event!r}")

    async def kill(self) -> None:
        """``kill -9`` this process (by its PID) and reap it."""
        if self.alive:
            os.kill(self.pid, signal.SIGKILL)
        await self.process.wait()

    async def stop(self, timeout: float = 20) -> int:
        """SIGTERM, then SIGKILL if it does not exit within ``timeout``; the exit code."""
        if self.alive:
            os.kill(self.pid, signal.SIGTERM)
            try:
                return await asyncio.wait_for(self.process.wait(), timeout)
            except TimeoutError:
                os.kill(self.pid, signal.SIGKILL)
        return await self.process.wait()

    def rss_kib(self) -> int:
        """Resident set size (``VmRSS`` of /proc/<pid>/status), in KiB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError(f"no VmRSS for {self}")


class ServiceGroup:
    """The processes one test started; all are stopped (by PID) when the test ends."""

    def __init__(self, logbook: LogBook) -> None:
        self.logbook = logbook
        self.processes: list[ServiceProcess] = []

    async def start(self, name: str, settings: Settings, *, ready: bool = True,
                    **overrides: str) -> ServiceProcess:
        """Start ``python -m services.<name>``; by default wait for its ``ready`` line."""
        log_path = self.logbook.new_log(name)
        with log_path.open("wb") as log_file:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", f"services.{name}", cwd=ROOT,
                env=service_environment(settings, **overrides),
                stdin=asyncio.subprocess.DEVNULL, stdout=log_file, stderr=asyncio.subprocess.STDOUT)
        service = ServiceProcess(name, process, log_path)
        self.processes.append(service)
        if ready:  # bounded generously: 4 processes importing at once on a busy 2-core machine
            await service.wait_for("ready", timeout=90)
        return service

    async def start_many(self, *specs: tuple[str, Settings]) -> list[ServiceProcess]:
        """Start several services at once (imports dominate start-up; two cores share it)."""
        return list(await asyncio.gather(*(self.start(name, settings) for name, settings in specs)))

    def named(self, name: str) -> list[ServiceProcess]:
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
