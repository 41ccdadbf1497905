"""The running update notifier against ``shared/openapi.yaml``, with ``NOTIFIER_TOKEN`` set.

Polls and stream requests are generated from the document and sent with the token (as a
header, or in the query for the stream), without one, or with a wrong one. The update log
holds a few entries, so cursors can be resumed and streams replay real events.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import partial
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from hypothesis import strategies as st
from pymongo import AsyncMongoClient
from schemathesis import GenerationMode
from schemathesis.core import NotSet

from shared.broker import Broker, PublishFailed
from shared.mongo import PROJECT_UPDATES, Document, connect
from shared.openapi import DOCUMENT_PATH
from shared.settings import Settings
from tests.api.contract import Exchange, Log, call_and_check, explore_in_thread
from tests.api.document import ApiCase, api_schema, conforms, document
from tests.health.running import RunningService, running_service
from tests.support.notifier import publish
from tests.support.waiting import eventually

SERVICE = "update_notifier"
TOKEN = "contract-token"
POLL = ("/api/getUpdates", "POST")
STREAM = ("/api/updates/stream", "GET")
OTHER_OPERATIONS = (("/healthz", "GET"), ("/readyz", "GET"), ("/metrics", "GET"),
                    ("/openapi.yaml", "GET"))
LOGGED_UPDATES = ("p-1", "p-2", "p-1", "p-3", "p-2", "p-4", "p-5", "p-1")
POLL_EXAMPLES = 80
STREAM_EXAMPLES = 30


@dataclass(frozen=True, slots=True)
class Credentials:
    """How a generated request presents the token."""

    name: str
    headers: dict[str, str] | None = None
    params: dict[str, str] | None = None


BEARER = Credentials("bearer", headers={"Authorization": f"Bearer {TOKEN}"})
QUERY = Credentials("query", params={"access_token": TOKEN})
NONE = Credentials("none")
WRONG = Credentials("wrong", headers={"Authorization": "Bearer not-the-token"})


@pytest.fixture(scope="module")
async def notifier(api_settings: Settings, api_broker: Broker,
                   tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningService]:
    """The notifier, with the token set and the updates above in its log."""
    settings = api_settings.model_copy(update={"notifier_token": TOKEN})
    async with running_service(SERVICE, settings, tmp_path_factory.mktemp("notifier")) as service:
        for project_id in LOGGED_UPDATES:
            await eventually(partial(published, api_broker, project_id), timeout=60,
                             what=f"an update of {project_id} published")
        client: AsyncMongoClient[Document] = connect(settings, "tests")
        try:
            async def all_logged() -> bool:
                count = await client[settings.mongo_db][PROJECT_UPDATES].count_documents({})
                return count >= len(LOGGED_UPDATES)

            await eventually(all_logged, what="the updates in the log")
        finally:
            await client.close()
        yield service


async def published(broker: Broker, project_id: str) -> bool:
    """Publish one update; False if the broker did not confirm it (it may be restarting)."""
    try:
        await publish(broker, [project_id])
    except PublishFailed:
        return False
    return True


def breaks_cursor_pattern(exchange: Exchange) -> bool:
    """The request's ``?cursor=`` (the first, as the server reads it) is not ``CursorOrEmpty``."""
    pattern = document()["components"]["schemas"]["CursorOrEmpty"]["pattern"]
    cursors = parse_qs(urlsplit(exchange.url).query, keep_blank_values=True).get("cursor")
    if not cursors:
        return False
    return re.search(pattern, cursors[0]) is None


def send(credentials_and_case: tuple[Credentials, ApiCase], base_url: str, log: Log) -> None:
    credentials, case = credentials_and_case
    call_and_check(case, base_url, log, headers=credentials.headers, params=credentials.params)


class TestPollingContract:
    async def test_valid_polls_get_documented_answers(self, notifier: RunningService) -> None:
        """Valid bodies (legacy, chain start, resume) get documented answers: 200 with the
        token, 401 without or with a wrong one, 400 for a cursor ahead of the log."""
        operation = api_schema(SERVICE)[POLL[0]][POLL[1]]
        strategy = st.tuples(st.sampled_from([BEARER, BEARER, NONE, WRONG]),
                             operation.as_strategy(GenerationMode.POSITIVE))
        log = Log()
        await explore_in_thread(strategy, partial(send, base_url=notifier.base_url, log=log),
                                max_examples=POLL_EXAMPLES)
        assert {200, 400, 401} <= set(log.statuses), log.statuses

    async def test_invalid_polls_are_refused_as_documented(self, notifier: RunningService) -> None:
        """Bodies that break the schema (schemathesis' negative mode: not an object, a cursor
        of the wrong type or shape) all get the documented 400."""
        operation = api_schema(SERVICE)[POLL[0]][POLL[1]]
        strategy = st.tuples(st.just(BEARER), operation.as_strategy(GenerationMode.NEGATIVE))
        log = Log()
        await explore_in_thread(strategy, partial(send, base_url=notifier.base_url, log=log),
                                max_examples=POLL_EXAMPLES)
        # Without a body (the body is optional) a request is a valid legacy poll.
        refused = log.where(lambda exchange: not isinstance(exchange.case.body, NotSet))
        assert refused and {exchange.status for exchange in refused} == {400}, log.statuses

    async def test_oversized_body_is_413_as_documented(self, notifier: RunningService) -> None:
        """A body over 16 KiB gets the documented 413."""
        case = api_schema(SERVICE)[POLL[0]][POLL[1]].Case(
            body={"cursor": "v1." + "0" * 17_000}, media_type="application/json")
        response = await asyncio.to_thread(case.call, base_url=notifier.base_url,
                                           headers=BEARER.headers)
        assert response.status_code == 413
        conforms(case, response)


class TestStreamContract:
    async def test_streams_get_documented_answers(self, notifier: RunningService) -> None:
        """Stream requests (fresh, ``?cursor=``, ``Last-Event-ID``, with either kind of token,
        without one or with a wrong one) get documented answers; the events of a 200 stream
        are checked against the document's event schemas."""
        operation = api_schema(SERVICE)[STREAM[0]][STREAM[1]]
        strategy = st.tuples(st.sampled_from([BEARER, QUERY, BEARER, QUERY, NONE, WRONG]),
                             operation.as_strategy(GenerationMode.POSITIVE))
        log = Log()
        await explore_in_thread(strategy, partial(send, base_url=notifier.base_url, log=log),
                                max_examples=STREAM_EXAMPLES)
        assert {200, 400, 401} <= set(log.statuses), log.statuses
        events = b"".join(exchange.body for exchange in log.where(lambda e: e.status == 200))
        assert b"event: ready" in events and b"event: update" in events

    async def test_invalid_stream_requests_are_refused_as_documented(
            self, notifier: RunningService) -> None:
        """A ``?cursor=`` that breaks the schema gets the documented 400 (when no
        ``Last-Event-ID`` is sent: that header wins, and any value of it is answered with
        events, so ``EventSource`` never stops)."""
        operation = api_schema(SERVICE)[STREAM[0]][STREAM[1]]
        cases = operation.as_strategy(GenerationMode.NEGATIVE).filter(
            lambda case: "Last-Event-ID" not in case.headers)
        log = Log()
        await explore_in_thread(st.tuples(st.just(BEARER), cases),
                                partial(send, base_url=notifier.base_url, log=log),
                                max_examples=STREAM_EXAMPLES)
        # Negative cases may instead only add unknown query parameters, which are ignored.
        refused = log.where(breaks_cursor_pattern)
        assert refused and {exchange.status for exchange in refused} == {400}, log.statuses


class TestNotifierDocument:
    async def test_other_operations_conform(self, notifier: RunningService) -> None:
        """Health, readiness, metrics and the document answer as documented, without a token."""
        schema = api_schema(SERVICE)
        log = Log()
        for path, method in OTHER_OPERATIONS:
            case = schema[path][method].Case()
            await asyncio.to_thread(call_and_check, case, notifier.base_url, log)
        assert set(log.statuses) == {200}

    async def test_serves_this_very_document(self, notifier: RunningService) -> None:
        """``GET /openapi.yaml`` is the file in the repository, byte for byte, as YAML."""
        async with aiohttp.ClientSession() as http, http.get(f"{notifier.base_url}/openapi.yaml") as response:
            assert response.status == 200
            assert response.content_type == "application/yaml"
            assert await response.read() == DOCUMENT_PATH.read_bytes()
