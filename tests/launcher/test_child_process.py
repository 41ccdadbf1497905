"""tools/processes.py: a child's output read as a stream or as a log, its exit, SIGTERM and SIGKILL.

The children are ``python -c`` scripts: no broker, no database.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tools.processes import ChildProcess

# Prints two JSON log lines and a library's plain one, then waits for a signal.
CHATTY = """
import json, signal, sys, time
signal.signal(signal.SIGTERM, lambda *_: (print(json.dumps({"event": "stopped"}), flush=True),
                                          sys.exit(0)))
for number, event in enumerate(["ready", "plain", "ready"]):
    print(json.dumps({"event": event, "n": number}) if event != "plain" else "a plain line",
          flush=True)
time.sleep(60)
"""
# Ignores SIGTERM: only SIGKILL ends it.
STUBBORN = """
import signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("up", flush=True)
time.sleep(60)
"""


async def until(condition: Callable[[], bool], process: ChildProcess) -> None:
    """Until ``condition()`` holds; fails if the process exits first."""
    while not condition():
        assert process.alive, process.text()
        await asyncio.sleep(0.01)


def child(script: str, *, log_path: Path | None = None,
          echo: Callable[[str], None] | None = None) -> ChildProcess:
    return ChildProcess("child", [sys.executable, "-c", script], env=dict(os.environ),
                        log_path=log_path, echo=echo)


class TestOutput:
    @pytest.mark.parametrize("to_file", [False, True], ids=["piped", "log file"])
    async def test_next_event_reads_on_and_wait_for_counts_from_the_start(
            self, tmp_path: Path, to_file: bool) -> None:
        process = child(CHATTY, log_path=tmp_path / "child.log" if to_file else None)
        try:
            assert (await process.next_event("ready"))["n"] == 0
            assert (await process.next_event("ready"))["n"] == 2
            assert (await process.wait_for("ready", count=1))["n"] == 0
            assert [line["n"] for line in process.events("ready")] == [0, 2]
            assert "a plain line" in process.text()
            assert len(process.lines()) == 2
        finally:
            assert await process.stop() == 0
        assert (await process.next_event("stopped"))["event"] == "stopped"

    async def test_echo_hands_every_line_over(self) -> None:
        seen: list[str] = []
        process = child(CHATTY, echo=seen.append)
        try:
            await until(lambda: len(seen) == 3, process)
        finally:
            assert await process.stop() == 0
        assert seen[1] == "a plain line\n"
        assert process.output_lines() == []  # echoed, not kept

    async def test_an_exit_before_the_line_fails_at_once(self) -> None:
        process = child("print('bye')")
        with pytest.raises(AssertionError, match="exited before logging 'ready'"):
            await process.next_event("ready", timeout=30)
        with pytest.raises(AssertionError, match="exited before logging 'ready'"):
            await process.wait_for("ready", timeout=30)
        assert process.returncode == 0


class TestStopping:
    async def test_sigterm_then_sigkill_when_it_lingers(self) -> None:
        process = child(STUBBORN)
        await until(lambda: "up" in process.text(), process)  # its handler is set
        assert await process.stop(timeout=0.5) == -signal.SIGKILL
        assert not process.alive

    async def test_kill_is_sigkill_by_pid(self) -> None:
        process = child(STUBBORN)
        await until(lambda: "up" in process.text(), process)
        assert await process.kill() == -signal.SIGKILL
        assert await process.stop() == -signal.SIGKILL  # stopping a dead process: its code
