"""Child processes started, watched and stopped by PID: ``make run``, the bench and the tests.

A :class:`ChildProcess` runs in a session of its own (a Ctrl-C at the terminal reaches
only its parent, which stops its children in order), with the environment it is given
and its stdout and stderr together captured one of three ways:

* ``log_path``: written straight to a file by the child itself (the bench, the resilience
  scenarios: nothing of ours between the child and its log, whatever it prints);
* ``echo``: piped to a thread that hands every line to a callback (``make run`` shows
  them, prefixed with the child's name);
* neither: piped to a thread that keeps every line in memory (the service tests).

Ready is its ``ready`` log line (:meth:`ChildProcess.wait_for`) or a health URL
(:func:`wait_until_healthy`). Stopping is SIGTERM, then SIGKILL if it lingers; crash
tests SIGKILL on demand. Nothing is ever looked up by name.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import aiohttp
import structlog

ROOT = Path(__file__).resolve().parents[1]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
# How often a waiting coroutine looks again (exit, log file, health URL).
POLL_SECONDS = 0.05

LogLine = dict[str, Any]

log = structlog.get_logger(__name__)


def python_module(module: str, *args: str) -> list[str]:
    """The command line of ``python -m <module> <args>`` with this interpreter."""
    return [sys.executable, "-m", module, *args]


def parse_log_lines(lines: Iterable[str]) -> list[LogLine]:
    """The JSON log lines among ``lines`` (a library's plain-text lines are skipped)."""
    parsed: list[LogLine] = []
    for raw in lines:
        try:
            line = json.loads(raw)
        except ValueError:
            continue
        if isinstance(line, dict):
            parsed.append(line)
    return parsed


class ChildProcess:
    """A process this program started; started here, like :class:`subprocess.Popen`."""

    def __init__(self, name: str, args: Sequence[str], *, env: Mapping[str, str],
                 cwd: Path = ROOT, log_path: Path | None = None,
                 echo: Callable[[str], None] | None = None) -> None:
        self.name = name
        self.log_path = log_path
        self._kept: list[str] = []  # the output lines, when piped and not echoed
        self._cursor = 0  # lines :meth:`next_event` has read past
        self._reader: threading.Thread | None = None
        with contextlib.ExitStack() as files:
            if log_path is not None:
                log_path.parent.mkdir(parents=True, exist_ok=True)
            output = (files.enter_context(log_path.open("ab")) if log_path is not None
                      else subprocess.PIPE)
            self._popen = subprocess.Popen(
                list(args), cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL, stdout=output,
                stderr=subprocess.STDOUT, start_new_session=True)
        if self._popen.stdout is not None:
            # A thread of its own, not the event loop's executor: it lives as long as the child.
            self._reader = threading.Thread(target=self._read, args=(self._popen.stdout, echo),
                                            name=f"output of {name}", daemon=True)
            self._reader.start()

    def _read(self, stream: IO[bytes], echo: Callable[[str], None] | None) -> None:
        sink = echo or self._kept.append
        for raw in iter(stream.readline, b""):
            sink(raw.decode(errors="replace"))
        stream.close()

    def __repr__(self) -> str:
        return f"ChildProcess({self.name}, pid={self.pid}, returncode={self.returncode})"

    # --- state --------------------------------------------------------------------------

    @property
    def pid(self) -> int:
        return self._popen.pid

    @property
    def returncode(self) -> int | None:
        return self._popen.poll()

    @property
    def alive(self) -> bool:
        return self.returncode is None

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def rss_bytes(self) -> int:
        return rss_bytes(self.pid)

    # --- output -------------------------------------------------------------------------

    def output_lines(self) -> list[str]:
        """Every complete line printed so far (none when they were echoed)."""
        if self.log_path is None:
            return list(self._kept)
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return []
        *complete, _unfinished = text.split("\n")  # a line being written is not one yet
        return [f"{line}\n" for line in complete]

    def text(self) -> str:
        return "".join(self.output_lines())

    def tail(self, lines: int = 15) -> str:
        return "".join(self.output_lines()[-lines:]).rstrip("\n")

    def lines(self) -> list[LogLine]:
        return parse_log_lines(self.output_lines())

    def events(self, *names: str) -> list[LogLine]:
        """The JSON log lines whose ``event`` is one of ``names``."""
        wanted = set(names)
        # Only lines naming an event are parsed: a busy service's log is long.
        candidates = (line for line in self.output_lines()
                      if any(f'"{name}"' in line for name in wanted))
        return [line for line in parse_log_lines(candidates) if line.get("event") in wanted]

    async def wait_for(self, event: str, *, count: int = 1, timeout: float = 20) -> LogLine:
        """The ``count``-th log line with this event; fails at once if the process exits."""
        deadline = time.monotonic() + timeout
        while True:
            exited = self._exited()  # first: what it printed before exiting is read next
            found = self.events(event)
            if len(found) >= count:
                return found[count - 1]
            self._check(exited, deadline, event, timeout)
            await asyncio.sleep(POLL_SECONDS)

    async def next_event(self, event: str, *, timeout: float = 20) -> LogLine:
        """The next log line with this event after the last one this method returned.

        Lines before it are read past, as a reader of the output stream would.
        """
        deadline = time.monotonic() + timeout
        while True:
            exited = self._exited()
            lines = self.output_lines()
            for number in range(self._cursor, len(lines)):
                parsed = parse_log_lines(lines[number:number + 1])
                if parsed and parsed[0].get("event") == event:
                    self._cursor = number + 1
                    return parsed[0]
            self._cursor = len(lines)
            self._check(exited, deadline, event, timeout)
            await asyncio.sleep(POLL_SECONDS)

    def _exited(self) -> bool:
        """Exited, and all it printed is readable (a piped output's reader is done)."""
        return not self.alive and (self._reader is None or not self._reader.is_alive())

    def _check(self, exited: bool, deadline: float, event: str, timeout: float) -> None:
        if exited:
            raise AssertionError(f"{self} exited before logging {event!r}:\n{self.tail(40)}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{self.name} (pid {self.pid}) did not log {event!r} "
                               f"within {timeout:g}s")

    # --- signals ------------------------------------------------------------------------

    def send_signal(self, signum: int) -> None:
        """Signal the process by its PID (nothing if it has exited and been reaped)."""
        if self.alive:
            self._popen.send_signal(signum)

    async def wait(self, timeout: float | None = None) -> int:
        """Its exit code once it has exited; TimeoutError after ``timeout``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self.returncode) is None:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"{self.name} (pid {self.pid}) still runs after {timeout:g}s")
            await asyncio.sleep(POLL_SECONDS)
        return code

    async def stop(self, timeout: float = 20) -> int:
        """SIGTERM, then SIGKILL if it does not exit within ``timeout``; the exit code."""
        self.send_signal(signal.SIGTERM)
        try:
            return await self.wait(timeout)
        except TimeoutError:
            log.warning("process_killed", name=self.name, pid=self.pid,
                        reason=f"did not stop within {timeout:g}s of SIGTERM")
            return await self.kill()

    async def kill(self) -> int:
        """``kill -9`` by its PID (a crash, for tests that want one); the exit code."""
        self.send_signal(signal.SIGKILL)
        return await self.wait()


async def wait_until_healthy(url: str, watched: Iterable[ChildProcess] = (), *,
                             timeout: float = 60) -> None:
    """Until ``url`` answers 200; fails at once if one of ``watched`` exits meanwhile."""
    watched = list(watched)
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
        while time.monotonic() < deadline:
            for child in watched:
                if not child.alive:
                    output = f":\n{child.tail()}" if child.log_path else ""
                    raise RuntimeError(f"{child.name} (pid {child.pid}) exited with "
                                       f"{child.returncode}{output}")
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(POLL_SECONDS * 2)
    raise TimeoutError(f"{url} not ready within {timeout:g}s")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (0 if it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_bytes(pid: int) -> int:
    """Resident set size of a process (0 if it is gone)."""
    try:
        statm = Path(f"/proc/{pid}/statm").read_text().split()
    except OSError:
        return 0
    return int(statm[1]) * PAGE_SIZE
