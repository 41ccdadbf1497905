"""Fixtures of the deployment tests: the files as loaded, nothing started."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.deploy.manifests import (
    COMPOSE_FILE,
    INFRA_DIR,
    K8S_DIR,
    Document,
    interpolate_tree,
    load_documents,
    load_yaml,
    settings_variables,
)


@pytest.fixture(scope="session")
def compose_raw() -> Document:
    """docker-compose.yml as written (merge keys resolved, ``${…}`` not interpolated)."""
    return load_yaml(COMPOSE_FILE)


@pytest.fixture(scope="session")
def compose(compose_raw: Document) -> Document:
    """docker-compose.yml as compose sees it when the host sets none of its variables."""
    interpolated: Document = interpolate_tree(compose_raw, {})
    return interpolated


@pytest.fixture(scope="session")
def k8s_documents() -> list[tuple[str, Document]]:
    """Every document of deploy/k8s (infra included), with its file's path relative to it."""
    return [(str(path.relative_to(K8S_DIR)), document)
            for path in sorted([*K8S_DIR.glob("*.yaml"), *INFRA_DIR.glob("*.yaml")])
            if path.name != "kustomization.yaml"
            for document in load_documents(path)]


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """No Settings variable from the test run's own environment leaks into a Settings()."""
    for name in settings_variables():
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    yield monkeypatch

