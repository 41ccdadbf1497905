"""The project's image, built with podman from the Dockerfile and run.

Each service runs in its own container as a deployment runs it (``--read-only``,
``--cap-drop=ALL``) on the host network, against the test's RabbitMQ and mongod and the
in-process VK sandbox. Skipped, with the reason, where podman cannot be installed.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from pymongo.asynchronous.database import AsyncDatabase

from shared.mongo import ContentType, Document
from shared.settings import Settings
from tests.containers.podman import PROJECT_IMAGE, Podman, PodmanUnavailable
from tests.deploy.manifests import makefile_uv_version
from tests.e2e.stack import cached_ids, connected_community
from tests.health.running import PORT_SETTING, SERVICES, on_free_port
from tests.support.environment import service_environment
from tests.support.sandbox import RunningSandbox
from tests.support.waiting import eventually

APP_UID = 10001
STOP_SECONDS = 10.0
# A cold build (debootstrap, the dependencies from PyPI) takes minutes; a warm one seconds.
pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def podman() -> Podman:
    try:
        return Podman.configured()
    except PodmanUnavailable as exc:
        pytest.skip(f"podman is not installed and cannot be installed here: {exc}")


@pytest.fixture(scope="module")
def project_image(podman: Podman) -> str:
    podman.build_project_image(makefile_uv_version())
    return PROJECT_IMAGE


@dataclass(frozen=True)
class ServiceContainer:
    """One service's container and the port its HTTP side answers on."""

    podman: Podman
    service: str
    container_id: str
    port: int

    async def podman_output(self, *args: str) -> str:
        return (await asyncio.to_thread(self.podman, *args)).strip()

    async def logs(self) -> str:
        return await self.podman_output("logs", "--tail", "30", self.container_id)

    async def ready(self, http: aiohttp.ClientSession) -> bool:
        if await self.podman_output("inspect", "--format", "{{.State.Running}}",
                                    self.container_id) != "true":
            raise AssertionError(f"{self.service} exited:\n{await self.logs()}")
        try:
            async with http.get(f"http://127.0.0.1:{self.port}/readyz") as response:
                return response.status == 200
        except aiohttp.ClientConnectionError:
            return False

    async def process_uid(self) -> int:
        """The real uid of the container's main process, as the host's kernel sees it."""
        pid = await self.podman_output("inspect", "--format", "{{.State.Pid}}", self.container_id)
        status = await asyncio.to_thread(Path(f"/proc/{pid}/status").read_text)
        uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
        return int(uid_line.split()[1])

    async def terminate(self) -> tuple[int, float]:
        """SIGTERM the service; its exit code and how long it took to exit."""
        started = time.monotonic()
        await self.podman_output("kill", "--signal", "TERM", self.container_id)
        code = await self.podman_output("wait", self.container_id)
        return int(code), time.monotonic() - started


def container_environment(settings: Settings) -> list[str]:
    """``-e NAME=value`` for every setting (and nothing else of this process's environment)."""
    args: list[str] = []
    for name, value in service_environment(settings).items():
        if name.lower() in Settings.model_fields:
            args += ["-e", f"{name}={value}"]
    return args


@asynccontextmanager
async def service_container(podman: Podman, image: str, service: str, settings: Settings
                            ) -> AsyncIterator[ServiceContainer]:
    """Run ``service`` from ``image`` until it answers ``/readyz``; removed afterwards."""
    settings = on_free_port(service, settings)
    container_id = (await asyncio.to_thread(
        podman, "run", "--detach", "--read-only", "--cap-drop=ALL", "--network=host",
        "--name", f"planner-test-{service}-{uuid.uuid4().hex[:8]}",
        *container_environment(settings), image, f"services.{service}")).strip()
    container = ServiceContainer(podman, service, container_id,
                                 getattr(settings, PORT_SETTING[service]))
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
            await eventually(lambda: container.ready(http), timeout=60, interval=0.2,
                             what=f"{service} in its container to answer /readyz")
        yield container
    finally:
        await asyncio.to_thread(podman, "rm", "--force", "--time", "0", container_id)


@pytest.fixture
def container_settings(vk_settings: Settings) -> Settings:
    """The test's settings (VK played by the sandbox), with e2e's short refresher lease."""
    return vk_settings.model_copy(update={"refresher_lease_seconds": 5.0})


class TestProjectImage:
    async def test_every_service_is_ready_runs_as_10001_and_stops_on_sigterm(
        self, podman: Podman, project_image: str, container_settings: Settings,
        db: AsyncDatabase[Document],
    ) -> None:
        """Each of the four services answers /readyz 200 read-only without capabilities,
        runs as uid 10001, and exits 0 within 10 s of SIGTERM."""
        async with AsyncExitStack() as stack:
            containers = [await stack.enter_async_context(
                service_container(podman, project_image, service, container_settings))
                for service in SERVICES]
            uids = {container.service: await container.process_uid() for container in containers}
            assert uids == dict.fromkeys(SERVICES, APP_UID)
            for container in containers:
                code, seconds = await container.terminate()
                assert (container.service, code) == (container.service, 0), await container.logs()
                assert seconds < STOP_SECONDS, (container.service, seconds)

    async def test_a_callback_through_the_gateway_container_reaches_the_refresher_container(
        self, podman: Podman, project_image: str, container_settings: Settings,
        vk_sandbox: RunningSandbox, db: AsyncDatabase[Document],
    ) -> None:
        """VK (the sandbox) calls the containerised gateway; the containerised refresher
        puts the new scheduled post into MongoDB."""
        async with AsyncExitStack() as stack:
            gateway = await stack.enter_async_context(
                service_container(podman, project_image, "callback_gateway", container_settings))
            await stack.enter_async_context(
                service_container(podman, project_image, "refresher", container_settings))
            settings = container_settings.model_copy(update={"gateway_port": gateway.port})
            community = await connected_community(db, vk_sandbox, settings)
            post = await vk_sandbox.control.create_post(
                community.group_id, "From a container", publish_date=int(time.time()) + 3600)

            async def scheduled() -> set[int]:
                return await cached_ids(db, community.project_id, ContentType.SCHEDULED)

            assert await eventually(scheduled, timeout=30,
                                    what="the post in MongoDB") == {post["id"]}
            deliveries = await vk_sandbox.control.deliveries(group_id=community.group_id)
            assert deliveries and all(d["delivered"] for d in deliveries)
