"""The services as real processes (``python -m services.<name>``) on free localhost ports.

Each process gets the test's :class:`Settings` as environment variables, its own port
(the HTTP port of the gateway and the notifier, the ``HEALTH_PORT`` side port of the
refresher and the post tracker) and a log file, which failures quote.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from shared.settings import Settings
from tests.support.environment import service_environment
from tests.support.waiting import eventually
from tools.mongod import free_port

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("callback_gateway", "update_notifier", "refresher", "post_tracker")
# The setting naming the port each service answers HTTP on.
PORT_SETTING = {"callback_gateway": "gateway_port", "update_notifier": "notifier_port",
                "refresher": "health_port", "post_tracker": "health_port"}
START_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 15.0


@dataclass(frozen=True, slots=True)
class SeededProject:
    """A project the gateway knows, so a valid callback for it is published."""

    group_id: int
    secret: str


SEEDED = SeededProject(group_id=424242, secret="health-secret")


def isolated_settings(mongo_url: str, amqp_url: str, **overrides: Any) -> Settings:
    """Settings with a database and a broker prefix of their own (as ``tests.conftest`` makes)."""
    name = f"t{uuid.uuid4().hex[:10]}"
    values: dict[str, Any] = {"mongo_url": mongo_url, "mongo_db": name, "amqp_url": amqp_url,
                              "amqp_prefix": name, "vk_timeout_seconds": 2.0, **overrides}
    return Settings(**values)


def on_free_port(name: str, settings: Settings) -> Settings:
    """``settings`` with the service ``name`` listening on 127.0.0.1 at a free port."""
    return settings.model_copy(update={
        "gateway_host": "127.0.0.1", "notifier_host": "127.0.0.1", "health_host": "127.0.0.1",
        PORT_SETTING[name]: free_port(),
    })


@dataclass(frozen=True, slots=True)
class RunningService:
    """One service process and the base URL of its HTTP port."""

    name: str
    settings: Settings
    process: asyncio.subprocess.Process
    log_path: Path

    @property
    def port(self) -> int:
        port: int = getattr(self.settings, PORT_SETTING[self.name])
        return port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 30) -> str:
        """The last lines the process logged, for failure messages."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


async def _answers_healthz(http: aiohttp.ClientSession, service: RunningService) -> bool:
    if service.process.returncode is not None:
        raise AssertionError(f"{service.name} exited with {service.process.returncode}:\n"
                             f"{service.log_tail()}")
    try:
        async with http.get(f"{service.base_url}/healthz") as response:
            return response.status == 200
    except aiohttp.ClientConnectionError:
        return False


@contextlib.asynccontextmanager
async def running_service(name: str, settings: Settings, log_dir: Path
                          ) -> AsyncIterator[RunningService]:
    """Start ``python -m services.<name>``; yield once ``/healthz`` answers; SIGTERM it after."""
    settings = on_free_port(name, settings)
    log_path = log_dir / f"{name}-{getattr(settings, PORT_SETTING[name])}.log"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", f"services.{name}", cwd=ROOT, env=service_environment(settings),
            stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=asyncio.subprocess.STDOUT)
    service = RunningService(name, settings, process, log_path)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
            await eventually(lambda: _answers_healthz(http, service), timeout=START_TIMEOUT_SECONDS,
                             interval=0.1, what=f"{name} to answer /healthz")
        yield service
    finally:
        await stop(service)


async def stop(service: RunningService) -> None:
    """SIGTERM, then SIGKILL if it has not exited in time."""
    process = service.process
    if process.returncode is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), STOP_TIMEOUT_SECONDS)
    except TimeoutError:
        process.kill()
        await process.wait()
