"""docker-compose.yml as a compose implementation resolves it (``config``).

``docker compose config`` where Docker's compose plugin exists, else ``podman-compose
config`` (the PyPI package) with this project's podman. It resolves what the deployment
tests (tests/deploy) read with their own loader: anchors and merge keys, ``${…}``
defaults, profiles. Running the file (``compose up`` with its health conditions) is not
done here: podman 4.3 runs health checks through systemd, which this machine lacks.
"""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import pytest
import yaml

from tests.containers.podman import Podman, PodmanUnavailable
from tests.deploy.manifests import (
    COMPOSE_FILE,
    ROOT,
    Document,
    interpolate_tree,
    load_yaml,
    tool_binary,
)

SANDBOX_PROFILE_SERVICES = {"vk_sandbox", "sandbox_seed"}


def compose_command() -> tuple[list[str], dict[str, str] | None]:
    """``docker compose`` if it works here, else podman-compose with the project's podman."""
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"],
                                                 capture_output=True, check=False).returncode == 0:
        return ["docker", "compose"], None
    podman_compose = tool_binary("podman-compose")
    assert podman_compose is not None, "podman-compose is a dev dependency: uv sync"
    try:
        podman = Podman.configured()
    except PodmanUnavailable as exc:
        pytest.skip(f"neither docker compose nor podman is available: {exc}")
    return [str(podman_compose)], podman.env


@pytest.fixture(scope="module")
def resolve() -> Any:
    command, env = compose_command()

    def run(*args: str) -> Document:
        result = subprocess.run([*command, "-f", str(COMPOSE_FILE), *args, "config"],
                                cwd=ROOT, env=env, capture_output=True, text=True, check=False,
                                timeout=120)
        assert result.returncode == 0, result.stderr
        document: Document = yaml.safe_load(result.stdout)
        return document

    return run


def as_read_by_the_deployment_tests() -> Document:
    """The file as tests/deploy read it (no host variables), with the build context made
    absolute as compose reports it."""
    document: Document = interpolate_tree(load_yaml(COMPOSE_FILE), {})
    for service in document["services"].values():
        if "build" in service:
            service["build"]["context"] = str((ROOT / service["build"]["context"]).resolve())
    return document


class TestComposeConfig:
    def test_every_service_resolves_as_the_deployment_tests_read_it(self, resolve: Any) -> None:
        """With the sandbox profile, each service (image, command, environment, health
        check, dependencies, ports, volumes) and the named volumes are as tests/deploy
        read them."""
        resolved = resolve("--profile", "sandbox")
        expected = as_read_by_the_deployment_tests()
        assert resolved["services"] == expected["services"]
        assert set(resolved["volumes"]) == set(expected["volumes"])

    def test_a_plain_up_leaves_the_sandbox_profile_out(self, resolve: Any) -> None:
        """Without ``--profile sandbox`` the VK sandbox and its seeding job are not started."""
        resolved = resolve()
        expected = as_read_by_the_deployment_tests()
        assert set(resolved["services"]) == set(expected["services"]) - SANDBOX_PROFILE_SERVICES
