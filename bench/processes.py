"""The bench's processes: started with the one launcher (:mod:`tools.processes`), measured from ``/proc``.

* :class:`BenchService`: a service (or :mod:`bench.bare_app`) the bench started, with the
  port it serves on and the numbers it logged.
* :class:`CpuWatch`: CPU time of several processes (and of the machine) over a window;
  :class:`NoiseWatch`: how much of the machine was busy with other users' work.
* Read-only looks at ``/proc`` (:func:`find_pids`, :func:`descendants`), the open-files
  limit, and :func:`wait_until` (how long a condition took to become true).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tools.processes import CLOCK_TICKS, ChildProcess, cpu_seconds

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


def start_process(name: str, args: Sequence[str], env: Mapping[str, str], log_dir: Path
                  ) -> ChildProcess:
    """Start ``args`` with its output in ``<log_dir>/<name>.log``."""
    return ChildProcess(name, args, env=env, log_path=log_dir / f"{name}.log")


class BenchService(ChildProcess):
    """A service (or the bare app) the bench started, serving HTTP on ``port``."""

    def __init__(self, name: str, args: Sequence[str], env: Mapping[str, str], log_dir: Path,
                 port: int) -> None:
        super().__init__(name, args, env=env, log_path=log_dir / f"{name}.log")
        self.port = port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ready_url(self) -> str:
        return f"{self.base_url}/readyz"

    def logged(self, event: str, field: str) -> list[float]:
        """Numeric ``field`` of the process's JSON log lines whose ``event`` is ``event``."""
        return [float(line[field]) for line in self.events(event)
                if isinstance(line.get(field), int | float)]


def find_pids(command_name: str) -> list[int]:
    """PIDs whose ``comm`` is ``command_name`` (read-only look at /proc)."""
    pids: list[int] = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() == command_name:
                    pids.append(int(entry.name))
    return pids


def descendants(root: int) -> list[int]:
    """PIDs below ``root`` in the process tree (read-only look at /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                stat = (entry / "stat").read_text()
                parent = int(stat[stat.rindex(")") + 2:].split()[1])
                children.setdefault(parent, []).append(int(entry.name))
    found, queue = [], [root]
    while queue:
        for child in children.get(queue.pop(), []):
            found.append(child)
            queue.append(child)
    return found


def machine_busy_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, all cores."""
    first = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(value) for value in first[:8]]
    idle = values[3] + values[4]
    return (sum(values) - idle) / CLOCK_TICKS, sum(values) / CLOCK_TICKS


class CpuWatch:
    """CPU used by named processes (and the whole machine) over a window, in % of one core.

    ``others`` is what the rest of the machine used meanwhile (other users' work on a
    shared machine): the whole machine's busy time less the watched processes and this
    benchmark process itself.
    """

    def __init__(self, pids: Mapping[str, int]) -> None:
        self._pids = {"bench": os.getpid(), **{name: pid for name, pid in pids.items() if pid}}
        self._start: dict[str, float] = {}
        self._machine: tuple[float, float] = (0.0, 0.0)
        self._t0 = 0.0

    def __enter__(self) -> CpuWatch:
        self._start = {name: cpu_seconds(pid) for name, pid in self._pids.items()}
        self._machine = machine_busy_seconds()
        self._t0 = time.monotonic()
        return self

    def __exit__(self, *_: object) -> None:
        elapsed = max(1e-6, time.monotonic() - self._t0)
        self.percent = {name: round(100 * (cpu_seconds(pid) - self._start[name]) / elapsed, 1)
                        for name, pid in self._pids.items()}
        busy, total = machine_busy_seconds()
        self.machine_percent = round(
            100 * (busy - self._machine[0]) / max(1e-6, total - self._machine[1]), 1)
        cores = os.cpu_count() or 1
        self.percent["others"] = round(max(
            0.0, self.machine_percent * cores - sum(self.percent.values())), 1)

    percent: dict[str, float]
    machine_percent: float

    def attribute(self, name: str, percent: float) -> None:
        """Name a share of ``others`` (a process measured by other means, e.g. wrk)."""
        self.percent[name] = percent
        self.percent["others"] = round(max(0.0, self.percent["others"] - percent), 1)

    def report(self) -> dict[str, Any]:
        return {"percent_of_one_core": self.percent,
                "machine_busy_percent_all_cores": self.machine_percent}


class NoiseWatch:
    """How busy the machine was during a benchmark, and how much of that was not us.

    "Us" is this process and everything it started (the services, mongod, a private
    RabbitMQ node, the load generators), counted whether they are still running or were
    reaped meanwhile. The machine's shared RabbitMQ counts as "others" (other users'
    tests use it too).
    """

    def __init__(self) -> None:
        self._start = (0.0, 0.0, 0.0, 0.0)

    @staticmethod
    def _ours() -> float:
        times = os.times()
        live = sum(cpu_seconds(pid) for pid in descendants(os.getpid()))
        return times.user + times.system + times.children_user + times.children_system + live

    def __enter__(self) -> NoiseWatch:
        busy, total = machine_busy_seconds()
        self._start = (busy, total, self._ours(), time.monotonic())
        return self

    def __exit__(self, *_: object) -> None:
        busy, total = machine_busy_seconds()
        busy0, total0, ours0, started = self._start
        cores = os.cpu_count() or 1
        elapsed = max(1e-6, time.monotonic() - started)
        machine = 100 * (busy - busy0) / max(1e-6, total - total0)
        ours = 100 * (self._ours() - ours0) / elapsed / cores
        self.report = {"machine_busy_percent": round(machine, 1),
                       "ours_percent": round(min(machine, ours), 1),
                       "others_percent": round(max(0.0, machine - ours), 1)}

    report: dict[str, float]



async def wait_until(predicate: Any, timeout: float, interval: float = 0.1,
                     what: str = "condition", required: bool = True) -> float:
    """Await ``predicate()`` (an async callable returning bool) until true; the time it took.

    Past ``timeout``: TimeoutError, or (``required=False``) just return.
    """
    started = time.monotonic()
    while True:
        if await predicate():
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            if required:
                raise TimeoutError(f"{what} not reached within {timeout:g}s")
            return time.monotonic() - started
        await asyncio.sleep(interval)


def raise_open_files_limit(wanted: int = 65536) -> int:
    """Raise this process's (and so its children's) open-files limit; the new soft limit."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < wanted:
        with contextlib.suppress(ValueError, OSError):  # raising the hard limit needs root
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, wanted))
            return wanted
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return max(soft, target)

