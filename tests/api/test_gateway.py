"""The running callback gateway against ``shared/openapi.yaml``.

Callbacks are generated from the document's envelope schema: valid ones (many aimed at a
project that exists, with its secret, so they are really published) and invalid ones
(schemathesis' negative mode). Every answer must be documented — status, media type,
headers, body — and none may be a 5xx.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import partial

import aiohttp
import pytest
from aiormq.exceptions import AMQPError
from hypothesis import strategies as st
from schemathesis import GenerationMode

from services.callback_gateway.metrics import KNOWN_TYPES
from shared.broker import Broker
from shared.mongo import connect
from shared.openapi import DOCUMENT_PATH
from shared.settings import Settings
from tests.api.contract import Exchange, Log, call_and_check, explore_in_thread
from tests.api.document import ApiCase, api_schema, conforms
from tests.health.running import RunningService, running_service
from tests.support.documents import insert_project
from tests.support.waiting import eventually

SERVICE = "callback_gateway"
CALLBACK = ("/api/callback", "POST")
OTHER_OPERATIONS = (("/healthz", "GET"), ("/readyz", "GET"), ("/metrics", "GET"),
                    ("/openapi.yaml", "GET"))
VALID_EXAMPLES = 120
INVALID_EXAMPLES = 120


@dataclass(frozen=True, slots=True)
class ContractProject:
    group_id: int
    secret: str
    confirmation_code: str


PROJECT = ContractProject(group_id=777001, secret="contract-secret", confirmation_code="c0nf1rm")
# Where a generated valid callback is sent: as generated, or to the project (right or wrong secret).
AIMS = ("as_generated", "project", "project_wrong_secret")


@pytest.fixture(scope="module")
async def gateway(api_settings: Settings, tmp_path_factory: pytest.TempPathFactory
                  ) -> AsyncIterator[RunningService]:
    client = connect(api_settings, "tests")
    try:
        await insert_project(client[api_settings.mongo_db], group_id=PROJECT.group_id,
                             secret=PROJECT.secret, confirmation_code=PROJECT.confirmation_code)
    finally:
        await client.close()
    async with running_service(SERVICE, api_settings, tmp_path_factory.mktemp("gateway")) as service:
        yield service


def aimed(case: ApiCase, aim: str, event_type: str | None) -> ApiCase:
    """The case, re-aimed at the seeded project and given a known type, as drawn."""
    assert isinstance(case.body, dict)
    body = dict(case.body)
    if event_type is not None:
        body["type"] = event_type
    if aim != "as_generated":
        wrong = body.get("secret") if body.get("secret") != PROJECT.secret else "not-the-secret"
        body.update(group_id=PROJECT.group_id,
                    secret=PROJECT.secret if aim == "project" else wrong)
    case.body = body
    return case


def is_for_project(exchange: Exchange) -> bool:
    body = exchange.case.body
    return isinstance(body, dict) and body.get("group_id") == PROJECT.group_id


async def queued(broker: Broker) -> int | None:
    """Messages waiting in the refresher's queue (nothing consumes it here); None if the
    broker cannot tell now."""
    try:
        async with asyncio.timeout(5):
            channel = await broker.connection.channel()
            try:
                queue = await channel.declare_queue(broker.topology.refresher_queue.name,
                                                    passive=True)
                count: int | None = queue.declaration_result.message_count
                return count
            finally:
                await channel.close()
    except (TimeoutError, AMQPError, RuntimeError):  # RuntimeError: a channel mid-reconnect
        return None


async def depth(broker: Broker) -> int:
    """The refresher queue's depth, waiting out a broker that cannot answer now."""

    async def known() -> tuple[int] | None:
        count = await queued(broker)
        return None if count is None else (count,)

    (count,) = await eventually(known, timeout=30, what="the queue depth")
    return count


class TestCallbackContract:
    async def test_valid_callbacks_get_documented_answers(self, gateway: RunningService,
                                                          api_broker: Broker) -> None:
        """Valid envelopes get documented answers only: ``ok`` once stored (each one is in the
        refresher's queue), the confirmation code, 403 for a wrong secret, 404 for an unknown
        community's confirmation — never a 5xx."""
        before = await depth(api_broker)
        operation = api_schema(SERVICE)[CALLBACK[0]][CALLBACK[1]]
        strategy = st.builds(aimed, operation.as_strategy(GenerationMode.POSITIVE),
                             st.sampled_from(AIMS), st.none() | st.sampled_from(sorted(KNOWN_TYPES)))
        log = Log()
        await explore_in_thread(strategy, partial(call_and_check, base_url=gateway.base_url, log=log),
                                max_examples=VALID_EXAMPLES)

        assert {200, 403, 404} <= set(log.statuses), log.statuses
        stored = log.where(lambda e: is_for_project(e) and e.status == 200 and e.body == b"ok")
        confirmed = log.where(lambda e: e.body == PROJECT.confirmation_code.encode())
        assert stored and confirmed

        async def all_stored() -> bool:
            return await depth(api_broker) - before == len(stored)

        await eventually(all_stored, what=f"{len(stored)} accepted events in the queue")

    async def test_invalid_callbacks_are_refused_as_documented(self, gateway: RunningService) -> None:
        """Bodies that break the envelope schema (schemathesis' negative mode: wrong types, out
        of range, missing fields, not JSON at all) all get the documented 400."""
        operation = api_schema(SERVICE)[CALLBACK[0]][CALLBACK[1]]
        log = Log()
        await explore_in_thread(operation.as_strategy(GenerationMode.NEGATIVE),
                                partial(call_and_check, base_url=gateway.base_url, log=log),
                                max_examples=INVALID_EXAMPLES)
        assert set(log.statuses) == {400}, log.statuses

    async def test_oversized_body_is_413_as_documented(self, gateway: RunningService,
                                                        api_settings: Settings) -> None:
        """A body over ``GATEWAY_MAX_BODY_BYTES`` gets the documented 413."""
        operation = api_schema(SERVICE)[CALLBACK[0]][CALLBACK[1]]
        padding = "x" * api_settings.gateway_max_body_bytes
        case = operation.Case(body={"type": "wall_post_new", "group_id": PROJECT.group_id,
                                    "object": {"text": padding}}, media_type="application/json")
        response = await asyncio.to_thread(case.call, base_url=gateway.base_url)
        assert response.status_code == 413
        conforms(case, response)


class TestGatewayDocument:
    async def test_other_operations_conform(self, gateway: RunningService) -> None:
        """Health, readiness, metrics and the document itself answer as documented."""
        schema = api_schema(SERVICE)
        log = Log()
        for path, method in OTHER_OPERATIONS:
            case = schema[path][method].Case()
            await asyncio.to_thread(call_and_check, case, gateway.base_url, log)
        assert set(log.statuses) == {200}

    async def test_serves_this_very_document(self, gateway: RunningService) -> None:
        """``GET /openapi.yaml`` is the file in the repository, byte for byte, as YAML."""
        async with aiohttp.ClientSession() as http, http.get(f"{gateway.base_url}/openapi.yaml") as response:
            assert response.status == 200
            assert response.content_type == "application/yaml"
            assert await response.read() == DOCUMENT_PATH.read_bytes()
