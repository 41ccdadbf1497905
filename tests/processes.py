"""Services as real processes (``python -m services.<name>``), for tests."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from shared.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def service_environment(settings: Settings, **overrides: str) -> dict[str, str]:
    """The environment that makes a service process use the test's servers and names."""
    return {**os.environ, "MONGO_URL": str(settings.mongo_url), "MONGO_DB": settings.mongo_db,
            "AMQP_URL": str(settings.amqp_url), "AMQP_PREFIX": settings.amqp_prefix,
            "VK_API_URL": str(settings.vk_api_url), "LOG_FORMAT": "json", **overrides}


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
