from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from typing import Any

import pytest
from aiohttp import ClientPayloadError
from pymongo.asynchronous.database import AsyncDatabase
from structlog.testing import capture_logs

from services.update_notifier.fanout import Frame
from services.update_notifier.keys import FANOUT
from shared.broker import Broker
from shared.mongo import PROJECT_UPDATES, Document
from tests.support.metrics import MetricsSince
from tests.support.notifier import StartNotifier, logged, publish
from tests.support.waiting import eventually
from tests.update_notifier.sse_client import SseEvent, SseStream, open_stream

OPEN_STREAMS = "notifier_open_streams"
OVERFLOWS = "notifier_stream_overflows_total"


def ids(events: list[SseEvent]) -> list[str | None]:
    return [event.id for event in events]


class TestLiveStream:
    async def test_starts_with_ready_then_streams_each_update(
        self, broker: Broker, db: AsyncDatabase[Document], start_notifier: StartNotifier
    ) -> None:
        """A fresh stream says where it starts, then sends updates as they are logged."""
        notifier = await start_notifier(broker=broker)
        await publish(broker, ["old"])
        await logged(db, 1)
        async with open_stream(notifier) as stream:
            ready = await stream.next_event()
            assert ready == SseEvent("ready", "v1.1", {"cursor": "v1.1"})
            assert stream.retry == 2000
            await publish(broker, ["p1", "p2"])
            assert await stream.events(2) == [
                SseEvent("update", "v1.2", {"projectId": "p1", "contentTypes": ["scheduled"],
                                            "cursor": "v1.2"}),
                SseEvent("update", "v1.3", {"projectId": "p2", "contentTypes": ["scheduled"],
                                            "cursor": "v1.3"}),
            ]

    async def test_a_replica_streams_updates_another_replica_consumed(
        self, broker: Broker, start_notifier: StartNotifier
    ) -> None:
        """Each replica follows the shared log itself, whoever appended to it."""
        await start_notifier(broker=broker)
        follower = await start_notifier()  # consumes nothing
        async with open_stream(follower) as stream:
            await stream.next_event()
            await publish(broker, ["p1"])
            assert (await stream.next_event()).data["projectId"] == "p1"

    async def test_logs_each_update_it_announces(
        self, broker: Broker, start_notifier: StartNotifier
    ) -> None:
        """``project_updated`` (info) names the project and correlation id of each update pushed."""
        with capture_logs() as logs:
            await start_notifier(broker=broker)
            [sent] = await publish(broker, ["p1"])

            async def announced() -> list[MutableMapping[str, Any]]:
                return [entry for entry in logs if entry["event"] == "project_updated"]

            [entry] = await eventually(announced, what="a project_updated log line")
        assert (entry["log_level"], entry["project_id"], entry["seq"], entry["correlation_id"]) == (
            "info", "p1", 1, sent.correlation_id)

    async def test_sends_keepalive_comments(self, start_notifier: StartNotifier) -> None:
        """Idle streams get ``: keepalive`` comment lines, so proxies and clients keep them open."""
        notifier = await start_notifier(keepalive_seconds=0.05)
        async with open_stream(notifier) as stream:
            await stream.next_event()
            assert await stream.next_comment(timeout=5) == "keepalive"

    async def test_shutdown_ends_open_streams_promptly(self, start_notifier: StartNotifier) -> None:
        """Stopping the server ends its streams instead of waiting for them."""
        notifier = await start_notifier()
        async with open_stream(notifier) as stream:
            await stream.next_event()
            async with asyncio.timeout(5):
                await notifier.client.server.close()
                with pytest.raises((EOFError, ClientPayloadError)):
                    await stream.next_event()


class TestResume:
    async def test_reconnecting_with_last_event_id_loses_and_repeats_nothing(
        self, broker: Broker, db: AsyncDatabase[Document], start_notifier: StartNotifier
    ) -> None:
        """Updates logged while disconnected are replayed after Last-Event-ID, then live ones follow."""
        notifier = await start_notifier(broker=broker)
        async with open_stream(notifier) as stream:
            received = [await stream.next_event()]
            await publish(broker, ["p1", "p2"])
            received += await stream.events(2)
        await publish(broker, ["p3", "p4", "p5"])
        await logged(db, 5)
        async with open_stream(notifier, headers={"Last-Event-ID": received[-1].id or ""}) as stream:
            received += await stream.events(3)
            await publish(broker, ["p6"])
            received += [await stream.next_event()]
        assert ids(received) == ["v1.0", "v1.1", "v1.2", "v1.3", "v1.4", "v1.5", "v1.6"]
        assert [event.data.get("projectId") for event in received[1:]] == [
            "p1", "p2", "p3", "p4", "p5", "p6"]

    async def test_resumes_from_the_cursor_parameter_but_last_event_id_wins(
        self, broker: Broker, db: AsyncDatabase[Document], start_notifier: StartNotifier
    ) -> None:
        """``?cursor=`` starts a stream from a polled cursor; a reconnect's Last-Event-ID overrides it."""
        notifier = await start_notifier(broker=broker)
        await publish(broker, ["p1", "p2", "p3"])
        await logged(db, 3)
        async with open_stream(notifier, params={"cursor": "v1.1"}) as stream:
            assert ids(await stream.events(2)) == ["v1.2", "v1.3"]
        async with open_stream(notifier, params={"cursor": "v1.1"},
                               headers={"Last-Event-ID": "v1.2"}) as stream:
            assert ids([await stream.next_event()]) == ["v1.3"]

    @pytest.mark.parametrize("last_event_id", ["v1.1", "v1.99", "not-a-cursor"])
    async def test_last_event_id_the_log_cannot_continue_gets_resync(
        self, broker: Broker, db: AsyncDatabase[Document], start_notifier: StartNotifier,
        last_event_id: str,
    ) -> None:
        """Expired, future or foreign ids get ``event: resync`` (an error would stop EventSource)."""
        notifier = await start_notifier(broker=broker)
        await publish(broker, ["p1", "p2", "p3"])
        await logged(db, 3)
        await db[PROJECT_UPDATES].delete_many({"_id": {"$lte": 2}})
        async with open_stream(notifier, headers={"Last-Event-ID": last_event_id}) as stream:
            assert await stream.next_event() == SseEvent(
                "resync", "v1.3", {"cursor": "v1.3", "resync": True})
            await publish(broker, ["p4"])
            assert (await stream.next_event()).id == "v1.4"

    @pytest.mark.parametrize(("cursor", "reason"), [("v1.99", "cursor is ahead of the update log"),
                                                    ("garbage", "cursor is malformed")])
    async def test_bad_cursor_parameter_is_400(
        self, start_notifier: StartNotifier, cursor: str, reason: str
    ) -> None:
        """A cursor the caller chose is the caller's bug: 400 with the reason."""
        notifier = await start_notifier()
        response = await notifier.client.get("/api/updates/stream", params={"cursor": cursor})
        assert response.status == 400
        assert await response.json() == {"error": reason}


class TestSlowClient:
    async def test_a_stream_that_falls_behind_is_cut_off_and_can_resume(
        self, broker: Broker, db: AsyncDatabase[Document], start_notifier: StartNotifier
    ) -> None:
        """A full stream queue disconnects that client (never blocking the fan-out); it resumes.
        The metrics count the open streams and the ones cut off."""
        notifier = await start_notifier(broker=broker, stream_queue_bound=2)
        fanout, since = notifier.app[FANOUT], MetricsSince()
        async with open_stream(notifier) as slow, open_stream(notifier) as other:
            last_id = (await slow.next_event()).id
            await other.next_event()
            assert since(OPEN_STREAMS) == 2
            # Both handlers are waiting; three frames in one go overflow both queues
            # of two before either can run.
            for _ in range(3):
                fanout.publish(Frame(b": burst\n\n"))
            assert since(OVERFLOWS) == 2
            assert fanout.subscriber_count == 0
            with pytest.raises((EOFError, ClientPayloadError)):
                await _read_to_the_end(slow)
        await eventually(lambda: _equals(since(OPEN_STREAMS), 0), what="both streams ended")
        await publish(broker, ["p1"])
        await logged(db, 1)
        async with open_stream(notifier, headers={"Last-Event-ID": last_id or ""}) as again:
            assert (await again.next_event()).data["projectId"] == "p1"
            assert since(OPEN_STREAMS) == 1


async def _equals(value: float, expected: float) -> bool:
    return value == expected


async def _read_to_the_end(stream: SseStream) -> None:
    async with asyncio.timeout(5):
        while True:
            await stream.next_event()
