"""Reading the deployment files the way their tools do, without a Docker engine or a cluster.

* YAML documents (merge keys resolved, as compose and kubectl do);
* compose's ``${VAR}`` / ``${VAR:-default}`` / ``${VAR-default}`` / ``$$`` interpolation;
* the variables ``shared.settings.Settings`` reads and the routes each service serves;
* the Dockerfile as instructions, with line continuations joined.
"""

from __future__ import annotations

import copy
import functools
import re
import shutil
import sysconfig
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from shared.health import add_health_routes
from shared.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
K8S_DIR = ROOT / "deploy" / "k8s"
INFRA_DIR = K8S_DIR / "infra"

# Service module -> the Settings field holding the port its HTTP endpoints listen on.
SERVICE_PORT_SETTING = {
    "callback_gateway": "gateway_port",
    "update_notifier": "notifier_port",
    "refresher": "health_port",
    "post_tracker": "health_port",
}
SERVICES = tuple(SERVICE_PORT_SETTING)
WORKERS = ("refresher", "post_tracker")
# Variables that hold credentials: never in a ConfigMap, always from a Secret.
SECRET_VARIABLES = frozenset({"AMQP_URL", "MONGO_URL", "NOTIFIER_TOKEN"})

Document = dict[str, Any]


def settings_variables() -> list[str]:
    """Every environment variable the services read: the upper-cased Settings fields."""
    return sorted(name.upper() for name in Settings.model_fields)


def load_documents(path: Path) -> list[Document]:
    """The non-empty YAML documents of a file (a fresh copy: callers may change it)."""
    return copy.deepcopy(_parsed(path.resolve()))


@functools.cache
def _parsed(path: Path) -> list[Document]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with path.open(encoding="utf-8") as stream:
        return [document for document in yaml.load_all(stream, Loader=loader) if document]


def load_yaml(path: Path) -> Document:
    documents = load_documents(path)
    assert len(documents) == 1, f"{path} should hold one YAML document"
    return documents[0]


_INTERPOLATION = re.compile(r"\$(?:(?P<escaped>\$)|\{(?P<braced>[^}]*)\}|(?P<named>[A-Za-z_][A-Za-z0-9_]*))")


def interpolate(value: str, environment: Mapping[str, str]) -> str:
    """Compose's interpolation of one string against ``environment`` (the host's variables)."""

    def replace(match: re.Match[str]) -> str:
        if match.group("escaped"):
            return "$"
        if name := match.group("named"):
            return environment.get(name, "")
        expression = match.group("braced")
        for operator in (":-", "-", ":?", "?"):
            name, found, argument = expression.partition(operator)
            if not found:
                continue
            current = environment.get(name)
            if operator == ":-":
                return current if current else argument
            if operator == "-":
                return current if current is not None else argument
            missing = not current if operator == ":?" else current is None
            if missing:
                raise KeyError(f"required variable {name} is missing: {argument}")
            return current or ""
        return environment.get(expression, "")

    return _INTERPOLATION.sub(replace, value)


def interpolate_tree(node: Any, environment: Mapping[str, str]) -> Any:
    """Interpolate every string of a loaded compose file (keys stay as written)."""
    if isinstance(node, str):
        return interpolate(node, environment)
    if isinstance(node, list):
        return [interpolate_tree(item, environment) for item in node]
    if isinstance(node, dict):
        return {key: interpolate_tree(value, environment) for key, value in node.items()}
    return node


def compose_environment(service: Mapping[str, Any]) -> dict[str, str | None]:
    """A compose service's ``environment`` as a mapping (``None``: taken from the host)."""
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        pairs = (item.partition("=") for item in raw)
        return {name: value if found else None for name, found, value in pairs}
    return {name: None if value is None else str(value) for name, value in raw.items()}


def served_routes(service: str, settings: Settings) -> set[tuple[str, str]]:
    """``(method, path)`` of every route the service's HTTP server has, built but not started."""
    app: web.Application
    if service == "callback_gateway":
        from services.callback_gateway.app import init_app as gateway_app

        app = gateway_app(settings)
    elif service == "update_notifier":
        from services.update_notifier.app import init_app as notifier_app

        app = notifier_app(settings)
    else:  # consumers serve shared/health.py's endpoints on HEALTH_PORT

        async def never_ready() -> bool:
            return False

        app = web.Application()
        add_health_routes(app, never_ready, service=service)
    return {(route.method, route.resource.canonical) for route in app.router.routes()
            if route.resource is not None}


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str
    stage: int  # index of the FROM it belongs to (0-based)


def dockerfile_instructions(path: Path = DOCKERFILE) -> list[Instruction]:
    """The Dockerfile's instructions, comments dropped and continuations joined."""
    instructions: list[Instruction] = []
    pending = ""
    stage = -1
    for line in path.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        pending = f"{pending} {stripped}" if pending else stripped
        if pending.endswith("\\"):
            pending = pending[:-1].rstrip()
            continue
        keyword, _, arguments = pending.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        instructions.append(Instruction(keyword, arguments.strip(), stage))
        pending = ""
    return instructions


def makefile_uv_version() -> str:
    """UV_VERSION of the Makefile (the uv the project bootstraps, and the image's)."""
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    match = re.search(r"^UV_VERSION\s*:?=\s*(\S+)", makefile, re.MULTILINE)
    if match is None:
        raise ValueError("the Makefile sets no UV_VERSION")
    return match[1]


def tool_binary(name: str) -> Path | None:
    """A console script of this environment (a wheel-shipped binary), else one on PATH."""
    candidate = Path(sysconfig.get_path("scripts")) / name
    if candidate.is_file():
        return candidate
    found = shutil.which(name)
    return Path(found) if found else None



def settings_from(monkeypatch: pytest.MonkeyPatch, environment: Mapping[str, str]) -> Settings:
    """Settings as a container with exactly ``environment`` loads them (parsed from strings).

    Use it with the ``clean_environment`` fixture, so the test run's own variables stay out.
    """
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return Settings()
