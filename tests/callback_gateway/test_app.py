from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pymongo.asynchronous.database import AsyncDatabase
from structlog.testing import capture_logs

from services.callback_gateway import metrics
from services.callback_gateway.app import init_app
from services.callback_gateway.projects import RECHECKS_PER_WINDOW
from shared.broker import BATCH, Broker
from shared.messages import CallbackEvent
from shared.mongo import Document
from shared.settings import Settings
from tests.callback_gateway.test_projects import mongo_queries
from tests.support.documents import insert_project
from tests.support.rabbit import queue_policy
from tests.support.waiting import eventually

Client = TestClient[web.Request, web.Application]
EVENT_ID = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
async def gateway(settings: Settings, db: AsyncDatabase[Document], broker: Broker
                  ) -> AsyncIterator[Client]:
    async with TestClient(TestServer(init_app(settings))) as client:
        yield client


async def queued_messages(broker: Broker) -> list[list[CallbackEvent]]:
    """Every message waiting in the refresher's queue (taken off it), as its events."""
    channel = await broker.connection.channel()
    queue = await channel.get_queue(broker.topology.refresher_queue.name, ensure=False)
    messages = []
    while (message := await queue.get(fail=False, no_ack=True)) is not None:
        lines = message.body.split(b"\n") if message.content_type == BATCH else [message.body]
        messages.append([CallbackEvent.model_validate_json(line) for line in lines])
    await channel.close()
    return messages


async def queued(broker: Broker) -> list[CallbackEvent]:
    """Every event waiting in the refresher's queue (taken off it)."""
    return [event for message in await queued_messages(broker) for event in message]


def event(group_id: int, **fields: object) -> dict[str, object]:
    return {"type": "wall_post_new", "group_id": group_id, "event_id": EVENT_ID, "v": "5.199",
            "object": {"id": 7, "post_type": "post"}, **fields}


class TestConfirmation:
    async def test_known_group_gets_its_code(self, gateway: Client, db: AsyncDatabase[Document]
                                             ) -> None:
        """The confirmation answer is exactly the code, as text/plain."""
        await insert_project(db, group_id=11, confirmation_code="a1b2c3d4")
        response = await gateway.post("/api/callback", json={"type": "confirmation", "group_id": 11})
        assert response.status == 200
        assert response.content_type == "text/plain"
        assert await response.read() == b"a1b2c3d4"

    async def test_unknown_group_is_404_without_ok(self, gateway: Client) -> None:
        """An unknown community is told so plainly; never 'ok' and never 'remove'."""
        response = await gateway.post("/api/callback", json={"type": "confirmation", "group_id": 999})
        text = await response.text()
        assert response.status == 404
        assert text != "ok" and "remove" not in text.lower()


class TestEvents:
    async def test_event_is_published_then_acknowledged(self, gateway: Client,
                                                        db: AsyncDatabase[Document],
                                                        broker: Broker) -> None:
        """A valid event lands durably in the refresher's queue; the answer is exactly 'ok'."""
        project_id = await insert_project(db, group_id=12, secret="s3cret")
        response = await gateway.post("/api/callback", json=event(12, secret="s3cret"),
                                      headers={"X-Retry-Counter": "2"})
        assert response.status == 200
        assert await response.read() == b"ok"
        [stored] = await queued(broker)
        assert (stored.type, stored.group_id, stored.event_id, stored.project_id) == (
            "wall_post_new", 12, EVENT_ID, project_id)
        assert stored.retry_counter == 2
        assert stored.object == {"id": 7, "post_type": "post"}
        assert stored.correlation_id

    @pytest.mark.parametrize("secret", [None, "wrong", "s3cre", "s3cret!"])
    async def test_bad_secret_is_403_and_nothing_queued(self, gateway: Client,
                                                        db: AsyncDatabase[Document], broker: Broker,
                                                        secret: str | None) -> None:
        """A missing or different secret is refused; no event reaches the broker."""
        await insert_project(db, group_id=13, secret="s3cret")
        body = event(13) if secret is None else event(13, secret=secret)
        response = await gateway.post("/api/callback", json=body)
        assert response.status == 403
        assert await response.text() == "bad secret"
        assert await queued(broker) == []

    async def test_unknown_group_is_acknowledged_and_dropped(self, gateway: Client,
                                                             broker: Broker) -> None:
        """VK gets 'ok' (it would retry forever otherwise), nothing is queued."""
        response = await gateway.post("/api/callback", json=event(424242))
        assert (response.status, await response.text()) == (200, "ok")
        assert await queued(broker) == []

    async def test_project_created_after_a_miss_is_found(self, gateway: Client,
                                                         db: AsyncDatabase[Document],
                                                         broker: Broker) -> None:
        """Misses are not cached: a brand-new project's events are accepted at once."""
        await gateway.post("/api/callback", json=event(14))
        await insert_project(db, group_id=14)
        response = await gateway.post("/api/callback", json=event(14))
        assert (response.status, await response.text()) == (200, "ok")
        assert len(await queued(broker)) == 1

    async def test_any_event_type_is_accepted(self, gateway: Client,
                                              db: AsyncDatabase[Document], broker: Broker) -> None:
        """Types that cause no refresh are still accepted and queued (the refresher decides)."""
        await insert_project(db, group_id=15)
        response = await gateway.post("/api/callback",
                                      json={"type": "message_new", "group_id": 15, "object": {}})
        assert (response.status, await response.text()) == (200, "ok")
        assert [e.type for e in await queued(broker)] == ["message_new"]


class TestBadInput:
    @pytest.mark.parametrize("body", [b"{", b"null", b'{"type": "x"}', b'{"type": "x", "group_id": 1.5}'])
    async def test_malformed_body_is_400_with_one_line(self, gateway: Client, body: bytes) -> None:
        """Malformed bodies get 400 and a one-line reason."""
        response = await gateway.post("/api/callback", data=body,
                                      headers={"Content-Type": "application/json"})
        text = await response.text()
        assert response.status == 400
        assert text.startswith("bad request: ") and "\n" not in text

    async def test_oversized_body_is_413(self, gateway: Client, settings: Settings) -> None:
        """A body over the limit is refused before parsing."""
        body = json.dumps({"type": "x", "group_id": 1,
                           "object": {"t": "x" * settings.gateway_max_body_bytes}})
        response = await gateway.post("/api/callback", data=body)
        assert response.status == 413


class TestSecretRotation:
    async def test_rotated_secret_is_accepted_at_once(self, gateway: Client,
                                                      db: AsyncDatabase[Document],
                                                      broker: Broker) -> None:
        """A secret changed in MongoDB works on the next callback despite the cache."""
        project_id = await insert_project(db, group_id=16, secret="old-secret")
        assert (await gateway.post("/api/callback", json=event(16, secret="old-secret"))).status == 200
        await db["projects"].update_one({"_id": project_id},
                                        {"$set": {"vk_callback_secret": "new-secret"}})
        assert (await gateway.post("/api/callback", json=event(16, secret="new-secret"))).status == 200
        assert (await gateway.post("/api/callback", json=event(16, secret="old-secret"))).status == 403
        assert len(await queued(broker)) == 2


class TestSharedCommunity:
    async def test_each_projects_secret_reaches_that_project(
        self, gateway: Client, db: AsyncDatabase[Document], broker: Broker
    ) -> None:
        """Two projects on one community, each with its own callback server (secret): each
        copy VK sends goes to its own project; a secret neither holds is refused."""
        first = await insert_project(db, group_id=21, secret="first-secret")
        second = await insert_project(db, group_id=21, secret="second-secret")
        for secret in ("first-secret", "second-secret"):
            response = await gateway.post("/api/callback", json=event(21, secret=secret))
            assert (response.status, await response.text()) == (200, "ok")
        assert (await gateway.post("/api/callback", json=event(21, secret="x"))).status == 403
        assert [e.project_id for e in await queued(broker)] == [first, second]

    async def test_projects_sharing_a_secret_each_get_the_event(
        self, gateway: Client, db: AsyncDatabase[Document], broker: Broker
    ) -> None:
        """One request for two projects: one event each, with the same event and
        correlation ids (deduplicated per project by the refresher)."""
        first = await insert_project(db, group_id=22, secret="shared")
        second = await insert_project(db, group_id=22, secret="shared")
        await insert_project(db, group_id=22, secret="another team")
        response = await gateway.post("/api/callback", json=event(22, secret="shared"))
        assert (response.status, await response.text()) == (200, "ok")
        events = await queued(broker)
        assert sorted(e.project_id for e in events) == sorted([first, second])
        assert {(e.event_id, e.correlation_id) for e in events} == {
            (EVENT_ID, events[0].correlation_id)}

    async def test_a_request_without_secret_goes_to_projects_without_one(
        self, gateway: Client, db: AsyncDatabase[Document], broker: Broker
    ) -> None:
        """A callback server without a secret serves the projects that hold none."""
        await insert_project(db, group_id=23, secret="s3cret")
        open_project = await insert_project(db, group_id=23)
        response = await gateway.post("/api/callback", json=event(23))
        assert (response.status, await response.text()) == (200, "ok")
        assert [e.project_id for e in await queued(broker)] == [open_project]

    async def test_confirmation_answers_the_communitys_code(
        self, gateway: Client, db: AsyncDatabase[Document]
    ) -> None:
        """The projects hold VK's one code; if they disagree, the one matching the secret
        answers and the disagreement is logged (project ids only, no codes)."""
        await insert_project(db, group_id=24, secret="a", confirmation_code="same", _id="p-a")
        await insert_project(db, group_id=24, secret="b", confirmation_code="same", _id="p-b")
        confirmation = {"type": "confirmation", "group_id": 24}

        async def answer(secret: str) -> str:
            response = await gateway.post("/api/callback", json={**confirmation, "secret": secret})
            assert response.status == 200
            return await response.text()

        assert await answer("b") == "same"
        await db["projects"].update_one({"_id": "p-b"},
                                        {"$set": {"vk_confirmation_code": "newer"}})

        async def changed() -> bool:  # the gateway hears of the change through its stream
            return await answer("b") == "newer"

        await eventually(changed, what="the changed code")
        with capture_logs() as logs:
            assert [await answer("b"), await answer("a")] == ["newer", "same"]
        disagreements = [e for e in logs if e["event"] == "confirmation_codes_disagree"]
        assert [e["project_ids"] for e in disagreements] == [["p-a", "p-b"]] * 2
        assert not any("newer" in str(entry) for entry in logs)


def bad_secrets_counted(group_id: int, checked: str) -> float:
    value = metrics.BAD_SECRETS.labels(group_id=str(group_id), checked=checked)._value.get()
    return float(value)


class TestForgedFlood:
    async def test_ten_thousand_forged_callbacks_cost_a_few_mongodb_reads(
        self, gateway: Client, db: AsyncDatabase[Document], broker: Broker, settings: Settings
    ) -> None:
        """10,000 callbacks with random wrong secrets: all 403, nothing queued, and MongoDB
        (``serverStatus().opcounters.query``) answers at most ``RECHECKS_PER_WINDOW`` + 1
        queries per cache window (the refused secrets' and the projects' caches) instead
        of one per callback; the real secret still works; the 403s are counted per
        community."""
        await insert_project(db, group_id=25, secret="real-secret")
        cached_before = bad_secrets_counted(25, "false")
        read_before = bad_secrets_counted(25, "true")
        reads_before = await mongo_queries(db)
        started = time.monotonic()
        for _ in range(100):
            answers = await asyncio.gather(*(
                gateway.post("/api/callback", json=event(25, secret=secrets.token_urlsafe(16)))
                for _ in range(100)))
            assert {answer.status for answer in answers} == {403}
        elapsed = time.monotonic() - started
        reads = await mongo_queries(db) - reads_before
        window = min(settings.gateway_refusal_cache_seconds,
                     settings.gateway_project_cache_seconds)
        windows = int(elapsed // window) + 1
        print(f"\n10,000 forged callbacks in {elapsed:.1f} s: {reads} MongoDB queries")
        assert reads <= (RECHECKS_PER_WINDOW + 1) * windows, (reads, elapsed)
        assert bad_secrets_counted(25, "false") - cached_before >= 10_000 - reads
        assert bad_secrets_counted(25, "true") - read_before <= reads
        assert await queued(broker) == []
        response = await gateway.post("/api/callback", json=event(25, secret="real-secret"))
        assert (response.status, await response.text()) == (200, "ok")


async def post_together(client: Client, bodies: list[dict[str, object]]) -> list[tuple[int, str, str]]:
    """POST the callbacks at once; (status, text, Retry-After) of each."""
    async def one(body: dict[str, object]) -> tuple[int, str, str]:
        response = await client.post("/api/callback", json=body)
        return response.status, await response.text(), response.headers.get("Retry-After", "")
    return list(await asyncio.gather(*(one(body) for body in bodies)))


class TestGroupCommit:
    async def test_concurrent_callbacks_share_messages_and_each_is_stored_once(
            self, gateway: Client, db: AsyncDatabase[Document], broker: Broker) -> None:
        """Callbacks arriving together are acked 'ok' after sharing confirms: the queue holds
        fewer messages than events, and every event exactly once."""
        await insert_project(db, group_id=17, secret="s")
        bodies = [event(17, secret="s", event_id=f"e{n}") for n in range(60)]
        answers = await post_together(gateway, bodies)
        assert answers == [(200, "ok", "")] * 60
        messages = await queued_messages(broker)
        assert len(messages) < 60
        events = [stored for message in messages for stored in message]
        assert sorted(stored.event_id or "" for stored in events) == sorted(f"e{n}" for n in range(60))
        assert len({stored.correlation_id for stored in events}) == 60

    async def test_a_refused_batch_answers_503_to_every_request_in_it(
            self, gateway: Client, db: AsyncDatabase[Document], broker: Broker) -> None:
        """The broker refuses (nacks) the publish — a full queue that rejects publishes: every
        request gets 503 with Retry-After, none 'ok', nothing of them stored."""
        await insert_project(db, group_id=18)
        queue = broker.topology.refresher_queue.name
        async with queue_policy(queue, '{"max-length": 0, "overflow": "reject-publish"}'):
            answers = await eventually_refused(gateway, [event(18, event_id=f"r{n}") for n in range(30)])
        assert answers == [(503, "temporarily unavailable", "5")] * 30
        assert {stored.event_id for stored in await queued(broker)} <= {"probe"}


    async def test_no_confirm_in_time_answers_503_to_every_request(
            self, settings: Settings, db: AsyncDatabase[Document], broker: Broker) -> None:
        """A confirm later than GATEWAY_PUBLISH_TIMEOUT_SECONDS fails the whole batch: 503 for all."""
        await insert_project(db, group_id=19)
        hasty = settings.model_copy(update={"gateway_publish_timeout_seconds": 1e-6})
        async with TestClient(TestServer(init_app(hasty))) as client:
            answers = await post_together(client, [event(19, event_id=f"t{n}") for n in range(30)])
        assert answers == [(503, "temporarily unavailable", "5")] * 30


async def eventually_refused(client: Client, bodies: list[dict[str, object]]
                             ) -> list[tuple[int, str, str]]:
    """POST together once the broker applies the new policy (it takes effect asynchronously)."""
    async def probe() -> bool:
        response = await client.post("/api/callback", json={**bodies[0], "event_id": "probe"})
        return response.status == 503
    await eventually(probe, what="the reject-publish policy in effect")
    return await post_together(client, bodies)
