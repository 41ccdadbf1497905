"""The services as real processes (``python -m services.<name>``) on free localhost ports.

Each process gets the test's :class:`Settings` as environment variables, its own port
(the HTTP port of the gateway and the notifier, the ``HEALTH_PORT`` side port of the
refresher and the post tracker) and a log file, which failures quote.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.settings import Settings
from tests.support.processes import start_service
from tools.mongod import free_port
from tools.processes import ChildProcess, wait_until_healthy

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
    process: ChildProcess

    @property
    def port(self) -> int:
        port: int = getattr(self.settings, PORT_SETTING[self.name])
        return port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 30) -> str:
        """The last lines the process logged, for failure messages."""
        return self.process.tail(lines)


@contextlib.asynccontextmanager
async def running_service(name: str, settings: Settings, log_dir: Path
                          ) -> AsyncIterator[RunningService]:
    """Start ``python -m services.<name>``; yield once ``/healthz`` answers; SIGTERM it after."""
    settings = on_free_port(name, settings)
    log_path = log_dir / f"{name}-{getattr(settings, PORT_SETTING[name])}.log"
    service = RunningService(name, settings, start_service(name, settings, log_path=log_path))
    try:
        await wait_until_healthy(f"{service.base_url}/healthz", [service.process],
                                 timeout=START_TIMEOUT_SECONDS)
        yield service
    finally:
        await service.process.stop(STOP_TIMEOUT_SECONDS)
