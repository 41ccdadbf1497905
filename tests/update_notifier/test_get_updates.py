from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from pydantic import SecretStr
from pymongo.asynchronous.database import AsyncDatabase
from structlog.testing import capture_logs

from services.update_notifier.app import init_app
from services.update_notifier.cursor import format_cursor
from services.update_notifier.polling import poll_after
from services.update_notifier.update_log import UpdateLog
from shared.broker import Broker
from shared.mongo import PROJECT_UPDATES, Document
from shared.settings import Settings
from shared.topology import Topology
from tests.support.metrics import MetricsSince
from tests.support.notifier import Notifier, StartNotifier, logged, publish, update
from tests.support.waiting import eventually

POLLS = "notifier_cursor_polls_total"


async def answers(notifier: Notifier, body: object, expected: dict[str, Any]) -> None:
    """Poll until the answer is ``expected``: the notifier follows the log (deletions
    included) through its change stream, a moment after MongoDB has it."""

    async def right() -> bool:
        return await notifier.poll(body) == expected

    await eventually(right, what=f"{expected} for {body}")


class TestLegacyMode:
    async def test_reports_the_set_of_projects_updated_since_the_previous_call(
        self, broker: Broker, db: AsyncDatabase[Document], start_notifier: StartNotifier
    ) -> None:
        """Updates published through the broker come back once, as a set, then are cleared."""
        notifier = await start_notifier(broker=broker)
        await publish(broker, ["p1", "p2", "p1"])
        await logged(db, 3)
        # The first call ever reports everything still retained.
        assert await notifier.poll() == {"updatedProjectIds": ["p1", "p2"]}
        assert await notifier.poll({}) == {"updatedProjectIds": []}
        await publish(broker, ["p3"])
        await logged(db, 4)
        assert await notifier.poll() == {"updatedProjectIds": ["p3"]}

    async def test_the_cleared_set_is_shared_by_all_replicas(
        self, broker: Broker, db: AsyncDatabase[Document], start_notifier: StartNotifier
    ) -> None:
        """Like the single-process original: what one replica reported, another does not repeat."""
        first, second = await start_notifier(broker=broker), await start_notifier()
        await publish(broker, ["p1"])
        await logged(db, 1)
        assert await first.poll() == {"updatedProjectIds": ["p1"]}
        assert await second.poll() == {"updatedProjectIds": []}
        await publish(broker, ["p2"])
        await logged(db, 2)
        assert await second.poll() == {"updatedProjectIds": ["p2"]}


class TestCursorMode:
    async def test_a_chain_sees_each_update_once(
        self, broker: Broker, db: AsyncDatabase[Document], start_notifier: StartNotifier
    ) -> None:
        """A new chain starts empty at the latest cursor, then reports what follows, once."""
        notifier = await start_notifier(broker=broker)
        await publish(broker, ["before"])
        await logged(db, 1)
        start = await notifier.poll({"cursor": None})
        assert start == {"updatedProjectIds": [], "cursor": "v1.1"}
        assert await notifier.poll({"cursor": ""}) == start
        await publish(broker, ["p1", "p2", "p1"])
        await logged(db, 4, notifier)
        assert await notifier.poll({"cursor": "v1.1"}) == {"updatedProjectIds": ["p1", "p2"],
                                                           "cursor": "v1.4"}
        assert await notifier.poll({"cursor": "v1.4"}) == {"updatedProjectIds": [], "cursor": "v1.4"}

    async def test_independent_chains_each_see_everything(
        self, broker: Broker, db: AsyncDatabase[Document], start_notifier: StartNotifier
    ) -> None:
        """Two tabs with their own cursors do not take updates from each other (nor from legacy)."""
        notifier = await start_notifier(broker=broker)
        tab_a = (await notifier.poll({"cursor": None}))["cursor"]
        tab_b = (await notifier.poll({"cursor": None}))["cursor"]
        await publish(broker, ["p1"])
        await logged(db, 1, notifier)
        first_a = await notifier.poll({"cursor": tab_a})
        assert first_a["updatedProjectIds"] == ["p1"]
        await notifier.poll()  # a legacy client clears only its own shared set
        await publish(broker, ["p2"])
        await logged(db, 2, notifier)
        assert (await notifier.poll({"cursor": tab_b}))["updatedProjectIds"] == ["p1", "p2"]
        assert (await notifier.poll({"cursor": first_a["cursor"]}))["updatedProjectIds"] == ["p2"]

    async def test_a_chain_alternating_between_two_notifiers_sees_each_update_once(
        self, broker: Broker, db: AsyncDatabase[Document], start_notifier: StartNotifier
    ) -> None:
        """Two instances, each consuming: a client bouncing between them misses and repeats nothing."""
        notifiers = [await start_notifier(broker=broker), await start_notifier(broker=broker)]
        cursor = (await notifiers[0].poll({"cursor": None}))["cursor"]
        seen: list[str] = []
        for batch in range(5):
            await publish(broker, [f"p{batch}-{index}" for index in range(4)])
            for turn in range(2):
                answer = await notifiers[(batch + turn) % 2].poll({"cursor": cursor})
                seen.extend(answer["updatedProjectIds"])
                cursor = answer["cursor"]
        await logged(db, 20, *notifiers)
        for notifier in notifiers:
            answer = await notifier.poll({"cursor": cursor})
            seen.extend(answer["updatedProjectIds"])
            cursor = answer["cursor"]
        assert sorted(seen) == sorted(f"p{batch}-{index}" for batch in range(5) for index in range(4))
        assert cursor == "v1.20"


class TestUnknownFields:
    async def test_a_frontend_that_adds_fields_keeps_its_updates(
        self, broker: Broker, db: AsyncDatabase[Document], start_notifier: StartNotifier
    ) -> None:
        """Fields other than ``cursor`` (a client version, a timestamp) are ignored, in
        both modes: the answers are those of the same body without them."""
        notifier = await start_notifier(broker=broker)
        extra = {"clientVersion": "1.2", "sentAt": 1733140800}
        assert await notifier.poll({"cursor": None, **extra}) == {"updatedProjectIds": [],
                                                                   "cursor": "v1.0"}
        await publish(broker, ["p1", "p2"])
        await logged(db, 2, notifier)
        assert await notifier.poll({"cursor": "v1.0", **extra}) == {
            "updatedProjectIds": ["p1", "p2"], "cursor": "v1.2"}
        assert await notifier.poll(extra) == {"updatedProjectIds": ["p1", "p2"]}


class TestCursorModeFromMemory:
    async def test_polls_near_the_head_are_answered_from_memory_as_the_log_answers(
        self, db: AsyncDatabase[Document], start_notifier: StartNotifier
    ) -> None:
        """A notifier started on a log of 12 keeps the latest 8 seqs: cursors 4–12 are
        answered from memory, older ones and one ahead of the log from MongoDB — every
        answer what the log alone gives. The metrics count them by source, and time them."""
        update_log = UpdateLog(db)
        await update_log.prepare()
        for seq in range(1, 13):
            await update_log.append(update(f"p{seq % 5}"))
        notifier = await start_notifier(head_entries=8)
        await notifier.followed(12)
        since = MetricsSince()
        for after in range(13):
            poll = await poll_after(update_log, after)  # the log alone
            assert not poll.resync
            assert await notifier.poll({"cursor": format_cursor(after)}) == {
                "updatedProjectIds": poll.project_ids, "cursor": format_cursor(poll.cursor)}
        assert (since(POLLS, source="head"), since(POLLS, source="log")) == (9, 4)
        assert since("notifier_poll_seconds_count", mode="cursor") == 13
        response = await notifier.client.post("/api/getUpdates", json={"cursor": "v1.13"})
        assert (response.status, await response.json()) == (
            400, {"error": "cursor is ahead of the update log"})
        assert since(POLLS, source="log") == 5

    async def test_a_chain_over_two_replicas_gets_every_entry_exactly_once(
        self, broker: Broker, db: AsyncDatabase[Document], start_notifier: StartNotifier
    ) -> None:
        """Both replicas consume and answer from memory while updates keep coming; a client
        alternating between them (so its cursor is often ahead of one replica's tail) gets
        each of 60 updates in exactly one poll, and its cursor never goes back."""
        notifiers = [await start_notifier(broker=broker), await start_notifier(broker=broker)]
        cursor = (await notifiers[0].poll({"cursor": None}))["cursor"]
        sent = [f"p{index}" for index in range(60)]

        async def publishing() -> None:
            for start in range(0, len(sent), 3):
                await publish(broker, sent[start:start + 3])
                await asyncio.sleep(0.02)

        publisher = asyncio.create_task(publishing())
        seen: list[str] = []
        cursors = [int(cursor.removeprefix("v1."))]
        async with asyncio.timeout(30):
            polls = 0
            while len(seen) < len(sent):
                answer = await notifiers[polls % 2].poll({"cursor": cursor})
                assert "resync" not in answer
                seen.extend(answer["updatedProjectIds"])
                cursor = answer["cursor"]
                cursors.append(int(cursor.removeprefix("v1.")))
                polls += 1
        await publisher
        await logged(db, 60, *notifiers)
        for notifier in notifiers:  # each has followed all 60: its own memory answers
            since = MetricsSince()
            assert await notifier.poll({"cursor": cursor}) == {"updatedProjectIds": [],
                                                               "cursor": "v1.60"}
            assert since(POLLS, source="head") == 1
        assert sorted(seen) == sorted(sent)  # each exactly once
        assert cursors == sorted(cursors)


class TestResync:
    async def test_a_cursor_older_than_the_retained_log_gets_resync_and_the_latest_cursor(
        self, broker: Broker, db: AsyncDatabase[Document], start_notifier: StartNotifier
    ) -> None:
        """Entries after the cursor expired: 200 with ``resync`` so the client reloads everything."""
        notifier = await start_notifier(broker=broker)
        cursor = (await notifier.poll({"cursor": None}))["cursor"]
        await publish(broker, ["p1", "p2", "p3"])
        await logged(db, 3, notifier)
        await db[PROJECT_UPDATES].delete_one({"_id": 1})  # as the TTL monitor would
        # The notifier follows deletions too, a moment later (its change stream).
        await answers(notifier, {"cursor": cursor},
                      {"updatedProjectIds": [], "resync": True, "cursor": "v1.3"})
        # A cursor whose next entry is still there carries on.
        assert await notifier.poll({"cursor": "v1.1"}) == {"updatedProjectIds": ["p2", "p3"],
                                                           "cursor": "v1.3"}
        await db[PROJECT_UPDATES].delete_many({})
        await answers(notifier, {"cursor": "v1.2"},
                      {"updatedProjectIds": [], "resync": True, "cursor": "v1.3"})

    async def test_a_hole_in_the_log_is_a_resync_too(
        self, broker: Broker, db: AsyncDatabase[Document], start_notifier: StartNotifier
    ) -> None:
        """An entry removed out of order (clock skew, an operator) is not skipped silently."""
        notifier = await start_notifier(broker=broker)
        await publish(broker, ["p1", "p2", "p3"])
        await logged(db, 3, notifier)
        await db[PROJECT_UPDATES].delete_one({"_id": 2})
        await answers(notifier, {"cursor": "v1.1"},
                      {"updatedProjectIds": [], "resync": True, "cursor": "v1.3"})


class TestBadInput:
    @pytest.mark.parametrize(("body", "reason"), [
        (b'{"cursor": "v1.999"}', "cursor is ahead of the update log"),
        (b'{"cursor": "last tuesday"}', "cursor is malformed"),
        (b"{not json", "body is not valid JSON"),
        (b'{"cursor": 17}', "cursor: Input should be a valid string"),
        (b'{"cursor": "v1.x", "clientVersion": "1.2"}', "cursor is malformed"),
        (b"[1, 2]", "body: Input should be an object"),
        (b"\x00\xff", "body is not valid JSON"),
    ])
    async def test_refused_with_400_and_a_one_line_reason(
        self, start_notifier: StartNotifier, body: bytes, reason: str
    ) -> None:
        """Bad bodies are the client's problem: 400 with ``{"error": ...}``, never a 500."""
        notifier = await start_notifier()
        response = await notifier.client.post("/api/getUpdates", data=body,
                                              headers={"Content-Type": "application/json"})
        assert response.status == 400
        assert await response.json() == {"error": reason}

    async def test_oversized_body_is_refused_with_413(self, start_notifier: StartNotifier) -> None:
        """Declared or streamed, a body over 16 KiB is refused."""
        notifier = await start_notifier()
        big = b'{"cursor": "' + b"1" * 17000 + b'"}'
        response = await notifier.client.post("/api/getUpdates", data=big)
        assert response.status == 413
        assert await response.json() == {"error": "body exceeds 16384 bytes"}

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(20):
                yield b" " * 1024

        response = await notifier.client.post("/api/getUpdates", data=chunks())
        assert response.status == 413


class TestBearerToken:
    @pytest.fixture
    def guarded(self, settings: Settings) -> Settings:
        return settings.model_copy(update={"notifier_token": SecretStr("tok-3f9a")})

    async def test_get_updates_requires_the_bearer_header(
        self, start_notifier: StartNotifier, guarded: Settings
    ) -> None:
        """Without (or with a wrong) token: 401; the query parameter does not count here."""
        notifier = await start_notifier(settings=guarded)
        for headers, params in [({}, {}), ({"Authorization": "Bearer nope"}, {}),
                                ({}, {"access_token": "tok-3f9a"})]:
            response = await notifier.client.post("/api/getUpdates", headers=headers, params=params)
            assert response.status == 401
            assert response.headers["WWW-Authenticate"] == "Bearer"
            assert await response.json() == {"error": "missing or wrong bearer token"}
        with capture_logs() as logs:
            answer = await notifier.poll({"cursor": None},
                                         headers={"Authorization": "Bearer tok-3f9a"})
        assert answer == {"updatedProjectIds": [], "cursor": "v1.0"}
        assert "tok-3f9a" not in repr(logs)

    async def test_stream_takes_the_header_or_the_access_token_parameter(
        self, start_notifier: StartNotifier, guarded: Settings
    ) -> None:
        """``EventSource`` cannot set headers, so the stream also accepts ``?access_token=``."""
        notifier = await start_notifier(settings=guarded)
        response = await notifier.client.get("/api/updates/stream")
        assert response.status == 401
        for headers, params in [({"Authorization": "Bearer tok-3f9a"}, {}),
                                ({}, {"access_token": "tok-3f9a"})]:
            response = await notifier.client.get("/api/updates/stream", headers=headers,
                                                 params=params)
            assert response.status == 200
            response.close()


class TestHealth:
    async def test_healthz_and_readyz_answer_when_all_is_up(
        self, broker: Broker, start_notifier: StartNotifier
    ) -> None:
        """Liveness is unconditional; readiness checks MongoDB and the broker."""
        notifier = await start_notifier(broker=broker)
        response = await notifier.client.get("/healthz")
        assert (response.status, await response.text()) == (200, "ok")
        response = await notifier.client.get("/readyz")
        assert (response.status, await response.text()) == (200, "ready")

    async def test_readyz_is_503_without_the_broker(
        self, settings: Settings, start_notifier: StartNotifier
    ) -> None:
        """A lost broker connection makes the replica unready (but still alive)."""
        own = Broker(str(settings.amqp_url), Topology(settings.amqp_prefix), client_name="t-ready")
        await own.connect()
        notifier = await start_notifier(broker=own)
        await own.close()
        response = await notifier.client.get("/readyz")
        assert (response.status, await response.text()) == (503, "not ready")
        assert (await notifier.client.get("/healthz")).status == 200


def test_init_app_opens_nothing_until_started(settings: Settings) -> None:
    """The factory only wires: MongoDB and the broker are touched when the app starts."""
    app = init_app(settings)
    assert isinstance(app, web.Application)
    assert {route.resource.canonical for route in app.router.routes() if route.resource} >= {
        "/api/getUpdates", "/api/updates/stream", "/healthz", "/readyz", "/metrics"}
