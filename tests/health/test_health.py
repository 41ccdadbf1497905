"""``/healthz``, ``/readyz`` and ``/metrics`` of the four services, each a running process.

The gateway and the notifier serve them on their HTTP port, the refresher and the post
tracker on their side port (``HEALTH_PORT``). The broker outage test is last in the module:
it stops the machine's RabbitMQ and waits for every service to be ready again.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import partial

import aiohttp
import pytest
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tests.api.document import DOCUMENTED, api_schema, conforms
from tests.health.metrics import (
    DEFAULT_FAMILIES,
    METRICS_MODULES,
    declared_families,
    metrics_module_files,
    naming_problems,
)
from tests.health.running import SEEDED, SERVICES, RunningService
from tests.support.rabbit import broker_stopped
from tests.support.waiting import eventually

Services = dict[str, RunningService]
OUTAGE_TIMEOUT_SECONDS = 30.0
RECOVERY_TIMEOUT_SECONDS = 60.0
HEALTH_PATHS = ("/healthz", "/readyz", "/metrics")


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    content_type: str
    text: str


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        yield session


async def get(http: aiohttp.ClientSession, service: RunningService, path: str) -> Answer:
    async with http.get(f"{service.base_url}{path}") as response:
        return Answer(response.status, response.content_type, await response.text())


async def readiness(http: aiohttp.ClientSession, service: RunningService) -> int:
    return (await get(http, service, "/readyz")).status


async def readiness_is(http: aiohttp.ClientSession, service: RunningService, status: int) -> bool:
    return await readiness(http, service) == status


class TestLiveness:
    @pytest.mark.parametrize("name", SERVICES)
    async def test_healthz_is_ok(self, services: Services, http: aiohttp.ClientSession,
                                 name: str) -> None:
        """``/healthz`` answers 200 ``ok`` as text/plain."""
        answer = await get(http, services[name], "/healthz")
        assert (answer.status, answer.content_type, answer.text) == (200, "text/plain", "ok")


class TestReadiness:
    @pytest.mark.parametrize("name", SERVICES)
    async def test_ready_while_broker_and_mongo_are_reachable(
            self, services: Services, http: aiohttp.ClientSession, name: str) -> None:
        """``/readyz`` answers 200 ``ready`` while RabbitMQ and MongoDB are reachable."""
        answer = await get(http, services[name], "/readyz")
        assert (answer.status, answer.content_type, answer.text) == (200, "text/plain", "ready")


class TestMetrics:
    @pytest.mark.parametrize("name", SERVICES)
    async def test_exports_the_families_its_metrics_modules_define(
            self, services: Services, http: aiohttp.ClientSession, name: str) -> None:
        """``/metrics`` is Prometheus text that parses, with every metric the service defines."""
        answer = await get(http, services[name], "/metrics")
        assert (answer.status, answer.content_type) == (200, "text/plain")
        exported = {(family.name, family.type)
                    for family in text_string_to_metric_families(answer.text)}
        expected = declared_families(METRICS_MODULES[name]) | DEFAULT_FAMILIES
        assert expected <= exported, f"missing from {name}: {sorted(expected - exported)}"

    @pytest.mark.parametrize("name", SERVICES)
    async def test_exports_its_readiness(self, services: Services, http: aiohttp.ClientSession,
                                         name: str) -> None:
        """``backbone_service_ready{service=<name>}`` is 1 while ``/readyz`` answers 200."""
        answer = await get(http, services[name], "/metrics")
        samples = {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
                   for family in text_string_to_metric_families(answer.text)
                   for sample in family.samples}
        assert samples[("backbone_service_ready", (("service", name),))] == 1

    @pytest.mark.parametrize("name", SERVICES)
    async def test_exported_names_follow_the_conventions(
            self, services: Services, http: aiohttp.ClientSession, name: str) -> None:
        """Every metric a running service exposes is named by the conventions."""
        answer = await get(http, services[name], "/metrics")
        assert naming_problems(answer.text) == []


class TestMetricNaming:
    def test_every_metrics_module_belongs_to_a_service(self) -> None:
        """Each ``metrics.py`` of the code base is one some service is expected to export."""
        expected = {module for modules in METRICS_MODULES.values() for module in modules}
        assert metrics_module_files() == expected

    def test_every_registered_metric_follows_the_conventions(self) -> None:
        """Over the whole registry: counters end in ``_total``, timings in ``_seconds``, etc."""
        declared_families(metrics_module_files())  # registers every metric of the code base
        exposition = generate_latest(REGISTRY).decode()
        assert "gateway_callbacks_total counter" in exposition  # the registry really is loaded
        assert naming_problems(exposition) == []

    def test_the_rules_catch_misnamed_metrics(self) -> None:
        """The naming check itself flags each kind of mistake."""
        exposition = "\n".join([
            "# TYPE gateway_callbacks counter",
            "# TYPE refresher_refresh_duration histogram",
            "# TYPE refresher_lag_ms gauge",
            "# TYPE post_tracker_pending_total gauge",
            "# TYPE queue_depth gauge",
        ])
        problems = naming_problems(exposition)
        assert [problem.split(":")[0] for problem in problems] == [
            "gateway_callbacks", "refresher_refresh_duration", "refresher_lag_ms",
            "post_tracker_pending_total", "queue_depth"]


class TestDocumentedAnswers:
    @pytest.mark.parametrize("name", SERVICES)
    async def test_health_answers_conform_to_the_openapi_document(
            self, services: Services, name: str) -> None:
        """Status, media type, headers and body of each health endpoint are as documented."""
        schema = api_schema(name)
        for path in HEALTH_PATHS:
            case = schema[path]["GET"].Case()
            response = await asyncio.to_thread(case.call, base_url=services[name].base_url)
            conforms(case, response)


class TestBrokerOutage:
    async def test_readiness_follows_the_broker(self, services: Services,
                                                http: aiohttp.ClientSession) -> None:
        """With RabbitMQ stopped every ``/readyz`` turns 503 (``/healthz`` stays 200) and the
        gateway answers callbacks 503 (+ ``Retry-After`` on a first try) as documented; once RabbitMQ is
        back, every connection is restored and every ``/readyz`` is 200 again."""
        for service in services.values():  # (a broker restarted by another run is waited out)
            await eventually(partial(readiness_is, http, service, 200),
                             timeout=RECOVERY_TIMEOUT_SECONDS, what=f"{service.name} ready")
        async with broker_stopped():
            for service in services.values():
                await eventually(partial(readiness_is, http, service, 503),
                                 timeout=OUTAGE_TIMEOUT_SECONDS, interval=0.2,
                                 what=f"{service.name} not ready")
            for service in services.values():
                assert (await get(http, service, "/healthz")).status == 200, service.name
            await _callback_is_refused_as_documented(services["callback_gateway"])
        for service in services.values():
            await eventually(partial(readiness_is, http, service, 200),
                             timeout=RECOVERY_TIMEOUT_SECONDS, interval=0.2,
                             what=f"{service.name} ready again\n{service.log_tail()}")


async def _callback_is_refused_as_documented(gateway: RunningService) -> None:
    case = api_schema("callback_gateway")["/api/callback"]["POST"].Case(
        body={"type": "wall_post_new", "group_id": SEEDED.group_id, "secret": SEEDED.secret,
              "event_id": "outage", "object": {"id": 1}},
        media_type="application/json")
    response = await asyncio.to_thread(case.call, base_url=gateway.base_url)
    assert response.status_code == 503, response.text
    assert response.headers.get("retry-after") == ["5"]
    conforms(case, response, DOCUMENTED)  # a documented 5xx: the one answer that may be one
    retried = await asyncio.to_thread(case.call, base_url=gateway.base_url,
                                      headers={"X-Retry-Counter": "2"})
    assert retried.status_code == 503, retried.text
    assert "retry-after" not in retried.headers  # VK's own schedule from here on
    conforms(case, retried, DOCUMENTED)
