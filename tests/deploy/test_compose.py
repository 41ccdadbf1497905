"""docker-compose.yml, checked without a Docker engine.

The file is validated against the Compose Specification's JSON schema as vendored in the
``check-jsonschema`` package (SchemaStore's copy of compose-spec's ``compose-spec.json``),
then checked for what the schema cannot know: the services, their health checks and
start order, scaling without port clashes, and the environment every service reads.
"""

from __future__ import annotations

import copy
import json
import re
from importlib.resources import files
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest

from shared.settings import Settings
from tests.deploy.manifests import (
    ROOT,
    SERVICE_PORT_SETTING,
    SERVICES,
    WORKERS,
    Document,
    compose_environment,
    interpolate,
    interpolate_tree,
    served_routes,
    settings_from,
    settings_variables,
)

# Variables a compose service deliberately does not set, so the service's own default
# (shared/settings.py) applies; each with the reason. Checked to be real and really unset.
COMPOSE_DEFAULTED: dict[str, dict[str, str]] = {
    service: {"NOTIFIER_TOKEN": "only update_notifier reads it: the token stays out of "
                                "the other containers"}
    for service in SERVICES if service != "update_notifier"
}
# Set without a value (``NAME:``): compose passes the host's value through, or leaves it
# unset; each with the reason.
COMPOSE_PASSED_THROUGH: dict[str, dict[str, str]] = {
    "update_notifier": {"NOTIFIER_TOKEN": "a secret: taken from the shell running compose; "
                                          "unset there = open API for local use"},
}
SANDBOX_VK_API_URL = "http://vk_sandbox:8090/method"
HEALTHCHECK_URL = re.compile(r"urlopen\('http://127\.0\.0\.1:(?P<port>\d+)(?P<path>/[^']*)'")


def compose_spec_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(
        files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json")
        .read_text(encoding="utf-8"))
    return schema


def schema_errors(document: Document) -> list[str]:
    schema = compose_spec_schema()
    validator_class = jsonschema.validators.validator_for(schema)
    validator = validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)
    return [f"{error.json_path}: {error.message}" for error in validator.iter_errors(document)]


def service_settings(compose: Document, service: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    environment = {name: value for name, value in
                   compose_environment(compose["services"][service]).items() if value is not None}
    return settings_from(monkeypatch, environment)


def healthcheck_url(service: Document) -> tuple[int, str]:
    test = " ".join(service["healthcheck"]["test"])
    match = HEALTHCHECK_URL.search(test)
    assert match, f"no urllib health check URL in {test!r}"
    return int(match["port"]), match["path"]


def published_ports(service: Document) -> list[tuple[str, int]]:
    """``(host port, container port)`` of a service's short-syntax ``ports``."""
    pairs = []
    for entry in service.get("ports", []):
        *host, container = str(entry).split(":")
        pairs.append((host[-1] if host else "", int(container.split("/")[0])))
    return pairs


class TestComposeSchema:
    def test_file_matches_the_compose_specification(self, compose_raw: Document,
                                                    compose: Document) -> None:
        """docker-compose.yml, as written and as interpolated, is valid per compose-spec's schema."""
        assert schema_errors(compose_raw) == []
        assert schema_errors(compose) == []

    def test_schema_rejects_a_misspelt_key(self, compose: Document) -> None:
        """The schema is strict: a misspelt service key is an error (so the check above means something)."""
        broken = copy.deepcopy(compose)
        broken["services"]["refresher"]["helthcheck"] = broken["services"]["refresher"].pop("healthcheck")
        assert any("helthcheck" in error for error in schema_errors(broken))


class TestComposeServices:
    def test_every_service_runs_from_the_one_image(self, compose: Document) -> None:
        """The four services are built from this Dockerfile as one image, each picking its module."""
        services = compose["services"]
        images = {(services[name]["image"], json.dumps(services[name]["build"], sort_keys=True))
                  for name in SERVICES}
        assert len(images) == 1
        for name in SERVICES:
            assert services[name]["build"]["context"] == "."
            assert services[name]["command"] == [f"services.{name}"]
            assert (ROOT / "services" / name).is_dir()

    def test_infrastructure_images(self, compose: Document) -> None:
        """RabbitMQ and MongoDB are the official images the deployment is built for."""
        assert compose["services"]["rabbitmq"]["image"] == "rabbitmq:3.13-management"
        assert compose["services"]["mongo"]["image"] == "mongo:7"

    def test_services_start_after_healthy_infrastructure(self, compose: Document) -> None:
        """Each service waits for RabbitMQ and MongoDB to be healthy, not just started."""
        for name in SERVICES:
            depends_on = compose["services"][name]["depends_on"]
            assert depends_on == {"rabbitmq": {"condition": "service_healthy"},
                                  "mongo": {"condition": "service_healthy"}}, name

    def test_every_awaited_service_has_a_healthcheck(self, compose: Document) -> None:
        """A ``service_healthy`` condition names a defined service that has a health check."""
        services = compose["services"]
        for name, service in services.items():
            for dependency, condition in (service.get("depends_on") or {}).items():
                assert dependency in services, f"{name} depends on undefined {dependency}"
                if condition["condition"] == "service_healthy":
                    assert "test" in services[dependency].get("healthcheck", {}), dependency

    def test_service_healthchecks_probe_readyz_on_the_configured_port(
            self, compose: Document, clean_environment: pytest.MonkeyPatch) -> None:
        """Each service's health check (urllib: the slim image has no curl) asks /readyz on its port."""
        for name in SERVICES:
            service = compose["services"][name]
            assert service["healthcheck"]["test"][:3] == ["CMD", "python", "-c"]
            port, path = healthcheck_url(service)
            settings = service_settings(compose, name, clean_environment)
            assert path == "/readyz"
            assert port == getattr(settings, SERVICE_PORT_SETTING[name]), name
            assert ("GET", path) in served_routes(name, settings), name

    def test_rabbitmq_healthcheck_and_quorum_default(self, compose: Document) -> None:
        """RabbitMQ is probed with rabbitmq-diagnostics; its mounted config defaults queues to
        quorum and has its Prometheus plugin report per-queue series (the alerts' queue depths)."""
        rabbitmq = compose["services"]["rabbitmq"]
        assert rabbitmq["healthcheck"]["test"] == ["CMD", "rabbitmq-diagnostics", "-q", "ping"]
        mounts = [str(volume).split(":") for volume in rabbitmq["volumes"]]
        configs = [ROOT / source for source, target, *_ in mounts
                   if target.startswith("/etc/rabbitmq/conf.d/")]
        assert len(configs) == 1 and configs[0].is_file()
        lines = [line.strip() for line in configs[0].read_text(encoding="utf-8").splitlines()]
        assert "default_queue_type = quorum" in lines
        assert "prometheus.return_per_object_metrics = true" in lines

    def test_mongo_is_a_self_initiating_replica_set(self, compose: Document) -> None:
        """mongod runs as replica set rs0; its health check initiates it and waits for a primary."""
        mongo = compose["services"]["mongo"]
        assert mongo["command"][:2] == ["--replSet", "rs0"]
        script = mongo["healthcheck"]["test"][-1]
        assert mongo["healthcheck"]["test"][:2] == ["CMD", "mongosh"]
        assert "rs.initiate({_id: 'rs0', members: [{_id: 0, host: 'mongo:27017'}]})" in script
        assert "isWritablePrimary" in script

    def test_services_reach_the_brokers_by_service_name(
            self, compose: Document, clean_environment: pytest.MonkeyPatch) -> None:
        """MONGO_URL and AMQP_URL name the compose services, the replica set and RabbitMQ's user."""
        rabbitmq_env = compose_environment(compose["services"]["rabbitmq"])
        for name in SERVICES:
            settings = service_settings(compose, name, clean_environment)
            assert settings.mongo_url.hosts() == [{"host": "mongo", "port": 27017,
                                                   "username": None, "password": None}]
            assert settings.mongo_url.query == "replicaSet=rs0"
            [rabbitmq] = settings.amqp_url.hosts()
            assert rabbitmq["host"] == "rabbitmq"
            assert rabbitmq["username"] == rabbitmq_env["RABBITMQ_DEFAULT_USER"]
            assert rabbitmq["password"] == rabbitmq_env["RABBITMQ_DEFAULT_PASS"]


class TestComposeScaling:
    def test_workers_publish_no_ports(self, compose: Document) -> None:
        """refresher and post_tracker publish nothing, so ``--scale refresher=3`` cannot clash."""
        for name in WORKERS:
            assert "ports" not in compose["services"][name], name

    def test_no_fixed_container_names(self, compose: Document) -> None:
        """No service pins container_name (a pinned name makes scaling fail)."""
        assert [name for name, service in compose["services"].items()
                if "container_name" in service] == []

    def test_host_ports_are_unique(self, compose: Document) -> None:
        """No two services (in any profile) publish the same host port."""
        host_ports = [host for service in compose["services"].values()
                      for host, _ in published_ports(service) if host]
        assert len(host_ports) == len(set(host_ports)), host_ports

    def test_http_services_publish_their_configured_port(
            self, compose: Document, clean_environment: pytest.MonkeyPatch) -> None:
        """The gateway and the notifier publish exactly the container port they listen on."""
        for name in ("callback_gateway", "update_notifier"):
            settings = service_settings(compose, name, clean_environment)
            ports = published_ports(compose["services"][name])
            assert [container for _, container in ports] == [
                getattr(settings, SERVICE_PORT_SETTING[name])], name


class TestComposeEnvironment:
    def test_allow_lists_name_real_variables(self) -> None:
        """Every allow-listed variable is one Settings reads, and every entry gives a reason."""
        variables = set(settings_variables())
        for table in (COMPOSE_DEFAULTED, COMPOSE_PASSED_THROUGH):
            for service, entries in table.items():
                assert service in SERVICES
                for name, reason in entries.items():
                    assert name in variables and reason.strip()

    @pytest.mark.parametrize("service", SERVICES)
    def test_every_setting_is_set_or_deliberately_defaulted(self, compose_raw: Document,
                                                            service: str) -> None:
        """Each variable of Settings is set for the service, or allow-listed with a reason."""
        environment = compose_environment(compose_raw["services"][service])
        defaulted = COMPOSE_DEFAULTED.get(service, {})
        passed_through = COMPOSE_PASSED_THROUGH.get(service, {})
        for name in settings_variables():
            if name in defaulted:
                assert name not in environment, f"{name} is set: drop it from the allow-list"
            elif name in passed_through:
                assert name in environment and environment[name] is None, name
            else:
                assert environment.get(name) is not None, f"{service}: {name} is not set"

    @pytest.mark.parametrize("service", SERVICES)
    def test_environment_is_valid_configuration(self, compose: Document, service: str,
                                                clean_environment: pytest.MonkeyPatch) -> None:
        """The environment compose gives each service (host variables unset) loads as Settings."""
        settings = service_settings(compose, service, clean_environment)
        assert settings.health_port == 9090
        assert str(settings.vk_api_url) == "https://api.vk.com/method"

    def test_environment_mapping_uses_the_shared_anchor(self, compose_raw: Document) -> None:
        """The common variables come from one ``x-service-env`` block, equal in every service."""
        shared = {name: str(value) for name, value in compose_raw["x-service-env"].items()}
        for name in SERVICES:
            environment = compose_environment(compose_raw["services"][name])
            assert {key: environment.get(key) for key in shared} == shared, name


class TestComposeSandboxProfile:
    def test_sandbox_only_in_its_profile(self, compose: Document) -> None:
        """The VK sandbox and its seeding job start only with ``--profile sandbox``."""
        for name, service in compose["services"].items():
            expected = ["sandbox"] if name in ("vk_sandbox", "sandbox_seed") else None
            assert service.get("profiles") == expected, name

    def test_sandbox_command_matches_its_cli(self, compose: Document) -> None:
        """The sandbox's command parses with tools.vk_sandbox's own CLI: all interfaces, :8090, demo."""
        from tools.vk_sandbox.__main__ import parse_args

        command = compose["services"]["vk_sandbox"]["command"]
        assert command[0] == "tools.vk_sandbox"
        config = parse_args(command[1:])
        assert (config.host, config.port, config.demo) == ("0.0.0.0", 8090, True)
        assert published_ports(compose["services"]["vk_sandbox"])[0][1] == config.port

    def test_sandbox_healthcheck_path_is_served(self, compose: Document) -> None:
        """The sandbox's health check asks a path its app serves, on the port it listens on."""
        from tools.vk_sandbox import init_app
        from tools.vk_sandbox.__main__ import parse_args

        service = compose["services"]["vk_sandbox"]
        config = parse_args(service["command"][1:])
        port, path = healthcheck_url(service)
        routes = {(route.method, route.resource.canonical)
                  for route in init_app(config).router.routes() if route.resource is not None}
        assert port == config.port
        assert ("GET", path) in routes

    def test_vk_api_url_switches_to_the_sandbox(self, compose_raw: Document) -> None:
        """VK_API_URL defaults to VK; the documented override points every service at the sandbox."""
        for name in SERVICES:
            raw = compose_environment(compose_raw["services"][name])["VK_API_URL"]
            assert raw is not None
            assert interpolate(raw, {}) == "https://api.vk.com/method"
            assert interpolate(raw, {"VK_API_URL": SANDBOX_VK_API_URL}) == SANDBOX_VK_API_URL
        sandbox = interpolate_tree(compose_raw, {"VK_API_URL": SANDBOX_VK_API_URL})
        url = urlsplit(SANDBOX_VK_API_URL)
        assert url.hostname in sandbox["services"]
        assert published_ports(sandbox["services"][url.hostname])[0][1] == url.port

    def test_seed_job_targets_the_sandbox_and_the_gateway(
            self, compose: Document, clean_environment: pytest.MonkeyPatch) -> None:
        """The seeding job talks to the sandbox and registers the gateway's served callback path."""
        seed = compose["services"]["sandbox_seed"]
        environment = compose_environment(seed)
        assert environment["VK_API_URL"] == SANDBOX_VK_API_URL
        callback = urlsplit(environment["SEED_CALLBACK_URL"] or "")
        gateway = service_settings(compose, "callback_gateway", clean_environment)
        assert (callback.hostname, callback.port) == ("callback_gateway", gateway.gateway_port)
        assert ("POST", callback.path) in served_routes("callback_gateway", gateway)
        assert seed["depends_on"]["callback_gateway"] == {"condition": "service_healthy"}
        assert seed["depends_on"]["vk_sandbox"] == {"condition": "service_healthy"}

    def test_seed_job_runs_the_demo_module(self, compose: Document) -> None:
        """The seeding job runs ``python -m tools.demo``, which exists in the image's sources."""
        import importlib

        seed = compose["services"]["sandbox_seed"]
        assert seed["command"] == ["tools.demo"]
        assert "volumes" not in seed
        assert callable(importlib.import_module("tools.demo").main)
