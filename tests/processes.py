"""Services as real processes (``python -m services.<name>``), for tests."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from shared.settings import Settings
from tests.support.environment import service_environment

ROOT = Path(__file__).resolve().parents[1]


async def start_service(name: str, settings: Settings, **overrides: str
                        ) -> asyncio.subprocess.Process:
    """Start ``python -m services.<name>`` with stdout (and stderr) piped."""
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", f"services.{name}", cwd=ROOT,
        env=service_environment(settings, **overrides),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)


async def next_log_line(stdout: asyncio.StreamReader | None, event: str, timeout: float = 20
                        ) -> dict[str, Any]:
    """Read JSON log lines until one has this ``event``; fail on EOF or after ``timeout``."""
    assert stdout is not None
    async with asyncio.timeout(timeout):
        while raw := await stdout.readline():
            try:
                line: dict[str, Any] = json.loads(raw)
            except ValueError:
                continue  # a stdlib log line of a library
            if line.get("event") == event:
                return line
    raise AssertionError(f"the service exited before logging {event!r}")
