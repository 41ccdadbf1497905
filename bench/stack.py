"""One benchmark's stack: its own database and broker prefix, the VK sandbox, the services.

:class:`Stack` starts the VK sandbox and the services as processes (``python -m
services.<name>``, through :mod:`bench.processes`), each waited for through its
``/readyz`` and stopped by PID; on close the broker topology and the database are
deleted. Also here: the benchmark's projects (:class:`BenchProject`), their callbacks,
and the refresher's round-spacing settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypedDict

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from bench.infrastructure import Infra, wait_for_broker
from bench.processes import PYTHON, BenchService, start_process
from shared.mongo import PROJECTS, Document, connect, ensure_indexes
from shared.settings import Settings
from shared.topology import Topology, delete_topology
from tools.mongod import free_port
from tools.processes import ChildProcess, wait_until_healthy
from tools.vk_sandbox.control import SandboxControl

# Settings of the services that the benchmarks set themselves; anything else of the
# caller's environment that would change a service's behaviour is dropped.
SETTINGS_VARIABLES = frozenset(name.upper() for name in Settings.model_fields)

ServiceName = Literal["callback_gateway", "refresher", "post_tracker", "update_notifier"]


class Stack:
    """One benchmark's database, broker prefix, VK sandbox and service processes."""

    def __init__(self, infra: Infra, name: str) -> None:
        self.infra = infra
        self.name = name
        self.db_name = f"bench_{infra.run_id}_{name}"
        self.prefix = f"bench-{infra.run_id}-{name}"
        self.log_dir = infra.log_dir / name
        self.procs: list[ChildProcess] = []
        self.sandbox_url: str | None = None
        self._client: AsyncMongoClient[Document] | None = None
        self._sessions: list[SandboxControl] = []

    # --- settings and environment -------------------------------------------------------

    def settings(self, **overrides: Any) -> Settings:
        values: dict[str, Any] = {"mongo_url": self.infra.mongo_url, "mongo_db": self.db_name,
                                  "amqp_url": self.infra.amqp_url, "amqp_prefix": self.prefix}
        if self.sandbox_url is not None:
            values["vk_api_url"] = f"{self.sandbox_url}/method"
        values.update(overrides)
        return Settings.model_validate(values)

    def env(self, **variables: str) -> dict[str, str]:
        base = {key: value for key, value in os.environ.items()
                if key.upper() not in SETTINGS_VARIABLES}
        base.update({
            "MONGO_URL": self.infra.mongo_url, "MONGO_DB": self.db_name,
            "AMQP_URL": self.infra.amqp_url, "AMQP_PREFIX": self.prefix,
            "LOG_FORMAT": "json", "LOG_LEVEL": "INFO", "PYTHONUNBUFFERED": "1",
            "GATEWAY_HOST": "127.0.0.1", "NOTIFIER_HOST": "127.0.0.1", "HEALTH_HOST": "127.0.0.1",
        })
        if self.sandbox_url is not None:
            base["VK_API_URL"] = f"{self.sandbox_url}/method"
        base.update(variables)
        return base

    @property
    def db(self) -> AsyncDatabase[Document]:
        if self._client is None:
            self._client = connect(self.settings(), "bench")
        return self._client[self.db_name]

    async def prepare_db(self) -> AsyncDatabase[Document]:
        await ensure_indexes(self.db, 24 * 3600)
        return self.db

    # --- processes ----------------------------------------------------------------------

    async def start_sandbox(self, retry_scale: float = 0.01) -> SandboxControl:
        port = free_port()
        proc = start_process(
            f"vk_sandbox-{port}",
            [PYTHON, "-m", "tools.vk_sandbox", "--host", "127.0.0.1", "--port", str(port),
             "--retry-scale", str(retry_scale), "--log-level", "WARNING"],
            self.env(), self.log_dir)
        self.procs.append(proc)
        self.sandbox_url = f"http://127.0.0.1:{port}"
        await wait_until_healthy(f"{self.sandbox_url}/_sandbox/health", [proc])
        control = SandboxControl(self.sandbox_url)
        self._sessions.append(control)
        self.sandbox_proc = proc
        return control

    sandbox_proc: ChildProcess

    async def start_service(self, service: ServiceName, *, label: str | None = None,
                            launcher: Sequence[str] = (), wait: bool = True,
                            **variables: str) -> BenchService:
        """Start ``python -m services.<service>`` (through ``launcher`` if given)."""
        await wait_for_broker(port=self.infra.amqp_port)
        port = free_port()
        env = self.env(**variables)
        port_variable = {"callback_gateway": "GATEWAY_PORT",
                         "update_notifier": "NOTIFIER_PORT"}.get(service, "HEALTH_PORT")
        env[port_variable] = str(port)
        module = f"services.{service}"
        args = [PYTHON, "-m", *launcher, module] if launcher else [PYTHON, "-m", module]
        proc = BenchService(f"{label or service}-{port}", args, env, self.log_dir, port)
        self.procs.append(proc)
        if wait:
            await wait_until_healthy(proc.ready_url, [proc])
        return proc

    async def start_bare_app(self, *args: str, label: str = "bare_app") -> BenchService:
        """:mod:`bench.bare_app` (``args``: e.g. ``--publish-to`` for the naive baseline)."""
        port = free_port()
        proc = BenchService(f"{label}-{port}",
                            [PYTHON, "-m", "bench.bare_app", "--port", str(port), *args],
                            self.env(), self.log_dir, port)
        self.procs.append(proc)
        await wait_until_healthy(proc.ready_url, [proc])
        return proc

    def check_alive(self) -> None:
        for proc in self.procs:
            if not proc.alive:
                raise RuntimeError(f"{proc.name} exited with {proc.returncode}:\n"
                                   f"{proc.tail(5)}")

    async def stop_proc(self, proc: ChildProcess) -> None:
        await proc.stop(15)
        with contextlib.suppress(ValueError):
            self.procs.remove(proc)

    # --- data ---------------------------------------------------------------------------

    async def add_projects(self, sandbox: SandboxControl | None, count: int, *,
                           secret: bool = True, wall_posts: int = 0) -> list[BenchProject]:
        """``count`` communities (each with its own admin and token) and their projects.

        With ``wall_posts``, each wall gets that many published posts first.
        """
        limit = asyncio.Semaphore(20)

        async def one(index: int) -> BenchProject:
            async with limit:
                if sandbox is not None:
                    community = await sandbox.create_community(name=f"bench {index}")
                    admin = await sandbox.create_user(admin_of=[community.group_id])
                    group_id, token = community.group_id, admin.token
                    for post in range(wall_posts):
                        await sandbox.create_post(group_id, f"older post {post}")
                else:
                    group_id, token = 1000 + index, f"token-{index}"
                return BenchProject(f"bench-{index}", group_id, token,
                                    uuid.uuid4().hex if secret else None)

        projects = list(await asyncio.gather(*(one(index) for index in range(count))))
        await self.db[PROJECTS].insert_many([{
            "_id": project.id, "name": f"Bench project {project.id}",
            "vk_group_id": project.group_id, "vk_confirmation_code": "c0nf1rm",
            "vk_callback_secret": project.secret, "vk_user_token": project.token,
        } for project in projects])
        return projects

    async def close(self) -> None:
        await asyncio.gather(*(proc.stop(15) for proc in self.procs))
        self.procs.clear()
        for control in self._sessions:
            await control.close()
        with contextlib.suppress(Exception):
            await delete_topology(self.infra.amqp_url, Topology(self.prefix))
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.drop_database(self.db_name)
            await self._client.close()
            self._client = None


@dataclass(frozen=True)
class BenchProject:
    id: str
    group_id: int
    token: str
    secret: str | None


async def connect_callbacks(stack: Stack, projects: Sequence[BenchProject], gateway_url: str,
                            timeout: float = 30.0) -> None:
    """Register the gateway as each community's callback server, with the project's secret.

    The same VK calls as ``tools/callback_setup.py`` (confirmation code stored on the
    project first, the real confirmation handshake, the refresher's events enabled), but
    keeping the secret the project already has: the product's set-up rotates it after the
    handshake, and the gateway's project cache would then refuse the new one for up to
    GATEWAY_PROJECT_CACHE_SECONDS.
    """
    from shared.vk import VkClient
    from tools.callback_setup import REFRESH_EVENTS, SERVER_TITLE

    settings = stack.settings()
    async with VkClient.from_settings(settings) as vk:
        async def one(project: BenchProject) -> None:
            assert project.secret is not None
            code = await vk.groups_get_callback_confirmation_code(project.token, project.group_id)
            await stack.db[PROJECTS].update_one({"_id": project.id},
                                                {"$set": {"vk_confirmation_code": code}})
            server_id = await vk.groups_add_callback_server(
                project.token, project.group_id, gateway_url, SERVER_TITLE, project.secret)
            await vk.groups_set_callback_settings(project.token, project.group_id, server_id,
                                                  settings.vk_api_version,
                                                  dict.fromkeys(REFRESH_EVENTS, True))
            deadline = time.monotonic() + timeout
            while True:
                servers = await vk.groups_get_callback_servers(project.token, project.group_id)
                status = next(item.status for item in servers if item.id == server_id)
                if status == "ok":
                    return
                if status == "failed" or time.monotonic() > deadline:
                    raise RuntimeError(f"callback server of {project.id}: {status}")
                await asyncio.sleep(0.1)

        await asyncio.gather(*(one(project) for project in projects))
    # Let VK's 1-s rate window of these set-up calls pass: the services' own limiters
    # never saw them.
    await asyncio.sleep(1.1)


async def purge_queues(url: str, topology: Topology) -> None:
    """Drop messages left in the consuming queues (benchmarks without a consumer)."""
    import aio_pika

    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        for spec in topology.consuming_queues:
            with contextlib.suppress(Exception):
                queue = await channel.get_queue(spec.name, ensure=False)
                await queue.purge()


def callback_body(project: BenchProject, index: int, event_type: str = "wall_post_new",
                  post: dict[str, Any] | None = None) -> dict[str, Any]:
    """A VK callback as VK posts it, for ``project``."""
    body: dict[str, Any] = {
        "type": event_type, "group_id": project.group_id,
        "event_id": uuid.uuid4().hex + f"{index:08x}", "v": "5.199",
        "object": post or {"id": index + 1, "owner_id": -project.group_id,
                           "from_id": -project.group_id, "date": int(time.time()),
                           "text": f"post {index}", "post_type": "post"},
    }
    if project.secret is not None:
        body["secret"] = project.secret
    return body


class FixedSpacing(TypedDict):
    REFRESHER_ROUND_SPACING_SECONDS: str
    REFRESHER_ROUND_SPACING_PER_EVENT_SECONDS: str
    REFRESHER_ROUND_SPACING_MAX_SECONDS: str


def fixed_spacing(seconds: float) -> FixedSpacing:
    """The refresher's environment for rounds a fixed ``seconds`` apart, however busy a key."""
    return FixedSpacing(REFRESHER_ROUND_SPACING_SECONDS=str(seconds),
                        REFRESHER_ROUND_SPACING_PER_EVENT_SECONDS="0",
                        REFRESHER_ROUND_SPACING_MAX_SECONDS=str(seconds))


def round_spacing(settings: Settings) -> dict[str, float]:
    """The refresher's round spacing settings, for a result's details."""
    return {"base_seconds": settings.refresher_round_spacing_seconds,
            "per_event_seconds": settings.refresher_round_spacing_per_event_seconds,
            "max_seconds": settings.refresher_round_spacing_max_seconds}

