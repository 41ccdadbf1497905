from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import UTC, datetime

import aio_pika
import pytest
from structlog.testing import capture_logs

from shared.broker import REASON_HEADER, AckPolicy, Broker, DeadLetter, PublishFailed
from shared.cluster_connection import ClusterConnection, connect_cluster, node_urls
from shared.messages import CallbackEvent, ProjectUpdated
from tests.support.rabbit import close_connections, queue_policy
from tests.support.waiting import eventually
from tools.mongod import free_port

FAST = AckPolicy(max_attempts=3, prefetch=8, shutdown_grace_seconds=2)


async def next_dead_letter(broker: Broker, queue_name: str, timeout: float = 10
                           ) -> aio_pika.abc.AbstractIncomingMessage:
    channel = await broker.connection.channel()
    queue = await channel.get_queue(queue_name, ensure=False)
    message = await eventually(lambda: queue.get(fail=False), timeout=timeout,
                               what=f"a message on {queue_name}")
    await message.ack()
    await channel.close()
    return message


def update(project_id: str = "p1") -> ProjectUpdated:
    return ProjectUpdated(project_id=project_id, reason="test")


class TestPublishAndConsume:
    async def test_confirmed_message_is_consumed_and_acked(self, broker: Broker) -> None:
        """A published message reaches the handler once and leaves the queue acked."""
        received: asyncio.Queue[ProjectUpdated] = asyncio.Queue()

        async def handle(message: ProjectUpdated) -> None:
            await received.put(message)

        sent = update()
        await broker.publish_update(sent)
        consumer = await broker.consume(broker.topology.notifier_queue, ProjectUpdated, handle, FAST)
        got = await asyncio.wait_for(received.get(), 10)
        assert got == sent
        # Closing the consumer's channel would return an unacked message to the queue.
        await consumer.stop()
        channel = await broker.connection.channel()
        queue = await channel.declare_queue(broker.topology.notifier_queue.name, passive=True)
        assert queue.declaration_result.message_count == 0

    async def test_unroutable_publish_raises(self, broker: Broker) -> None:
        """Publishing to an exchange outside the topology is refused, not silently dropped."""
        with pytest.raises(PublishFailed):
            await broker.publish(update(), exchange="nowhere", routing_key="x")

    async def test_mandatory_unroutable_message_raises(self, broker: Broker) -> None:
        """A message no queue is bound for comes back as a failure (mandatory + returns)."""
        with pytest.raises(PublishFailed):
            await broker.publish(update(), exchange=broker.topology.updates_exchange,
                                 routing_key="no-binding")


class TestAckPolicy:
    async def test_malformed_message_is_dead_lettered_with_reason(self, broker: Broker) -> None:
        """A body that is not a valid message goes to the DLQ at once with a readable reason."""
        calls: list[ProjectUpdated] = []

        async def handle(message: ProjectUpdated) -> None:
            calls.append(message)

        channel = await broker.connection.channel()
        exchange = await channel.get_exchange(broker.topology.updates_exchange)
        await exchange.publish(aio_pika.Message(b'{"project_id": 42'), "project.updated")
        await broker.consume(broker.topology.notifier_queue, ProjectUpdated, handle, FAST)
        parked = await next_dead_letter(broker, broker.topology.notifier_queue.dead_letter_queue)
        assert parked.body == b'{"project_id": 42'
        assert "malformed project_updated" in str((parked.headers or {})[REASON_HEADER])
        assert calls == []

    async def test_handler_dead_letter_parks_at_once(self, broker: Broker) -> None:
        """A handler raising DeadLetter parks the message after one attempt."""
        attempts = 0

        async def handle(message: ProjectUpdated) -> None:
            nonlocal attempts
            attempts += 1
            raise DeadLetter("project has no token")

        await broker.publish_update(update())
        await broker.consume(broker.topology.notifier_queue, ProjectUpdated, handle, FAST)
        parked = await next_dead_letter(broker, broker.topology.notifier_queue.dead_letter_queue)
        assert (parked.headers or {})[REASON_HEADER] == "project has no token"
        assert attempts == 1

    async def test_transient_failure_is_retried_then_succeeds(self, broker: Broker) -> None:
        """A failing handler sees the message again (redelivered) and can then succeed."""
        attempts: list[int] = []
        done = asyncio.Event()

        async def handle(message: ProjectUpdated) -> None:
            attempts.append(1)
            if len(attempts) < 2:
                raise ConnectionError("database briefly unavailable")
            done.set()

        await broker.publish_update(update())
        await broker.consume(broker.topology.notifier_queue, ProjectUpdated, handle, FAST)
        await asyncio.wait_for(done.wait(), 15)
        assert len(attempts) == 2

    async def test_exhausted_retries_are_dead_lettered_with_last_error(self, broker: Broker) -> None:
        """After max_attempts failures the message is parked with the last error as reason."""
        attempts = 0

        async def handle(message: ProjectUpdated) -> None:
            nonlocal attempts
            attempts += 1
            raise RuntimeError(f"boom {attempts}")

        await broker.publish_update(update())
        await broker.consume(broker.topology.notifier_queue, ProjectUpdated, handle, FAST)
        parked = await next_dead_letter(broker, broker.topology.notifier_queue.dead_letter_queue,
                                        timeout=30)
        reason = str((parked.headers or {})[REASON_HEADER])
        assert reason == "gave up after 3 attempts: RuntimeError: boom 3"
        assert json.loads(parked.body)["project_id"] == "p1"


class TestRobustConnection:
    async def test_consumer_survives_a_server_side_connection_drop(self, broker: Broker) -> None:
        """After RabbitMQ closes the connection, the consumer reconnects and keeps consuming."""
        received: asyncio.Queue[ProjectUpdated] = asyncio.Queue()

        async def handle(message: ProjectUpdated) -> None:
            await received.put(message)

        await broker.consume(broker.topology.notifier_queue, ProjectUpdated, handle, FAST)
        await broker.publish_update(update("before"))
        assert (await asyncio.wait_for(received.get(), 10)).project_id == "before"

        assert await close_connections(broker.client_name) == 1
        # Publishing during the reconnect may fail; the caller (like the gateway) retries.
        async with asyncio.timeout(30):
            while True:
                try:
                    await broker.publish_update(update("after"), timeout=2)
                    break
                except PublishFailed:
                    await asyncio.sleep(0.2)
        got = await asyncio.wait_for(received.get(), 20)
        assert got.project_id == "after"
        assert got.occurred_at <= datetime.now(UTC)


class TestNackedPublish:
    async def test_a_nack_fails_the_publish_and_publishing_moves_to_a_new_channel(
            self, broker: Broker) -> None:
        """RabbitMQ 3.10 may nack one channel's publishes to a quorum queue for good (its
        first one came just after the leader's node died: scenario 11 in
        tests/resilience/test_rabbit_cluster.py), so a nack fails the publish and the next
        ones go on a new channel. Here a full queue refusing publishes stands in for it."""
        queue = broker.topology.notifier_queue.name

        async def renewed_after_a_nack() -> bool:
            with contextlib.suppress(PublishFailed):
                await broker.publish_update(update("refused"), timeout=5)
            return any(entry["event"] == "broker_publish_channel_renewed" for entry in logs)

        with capture_logs() as logs:
            async with queue_policy(queue, '{"max-length": 0, "overflow": "reject-publish"}'):
                await eventually(renewed_after_a_nack, timeout=30, interval=0.2,
                                 what="a nacked publish and a new publishing channel")
        await eventually(lambda: _published(broker), timeout=30, interval=0.2,
                         what="a confirmed publish once the queue accepts again")


async def _published(broker: Broker) -> bool:
    try:
        await broker.publish_update(update("accepted"), timeout=5)
    except PublishFailed:
        return False
    return True


def callback(event_id: str) -> CallbackEvent:
    return CallbackEvent(type="wall_post_new", group_id=1, event_id=event_id, project_id="p",
                         received_at=datetime.now(UTC), correlation_id=f"c-{event_id}")


def serialised(*events: CallbackEvent) -> list[bytes]:
    return [event.model_dump_json().encode() for event in events]


async def dead_letters(broker: Broker, queue_name: str, count: int, timeout: float = 30
                       ) -> list[aio_pika.abc.AbstractIncomingMessage]:
    """The next ``count`` parked messages, then proof that no more follow at once."""
    parked = [await next_dead_letter(broker, queue_name, timeout) for _ in range(count)]
    channel = await broker.connection.channel()
    queue = await channel.get_queue(queue_name, ensure=False)
    assert await queue.get(fail=False) is None
    await channel.close()
    return parked


class TestBatches:
    async def test_batch_is_handled_event_by_event_and_acked(self, broker: Broker) -> None:
        """A batch of three serialised events reaches the handler as three events."""
        received: asyncio.Queue[CallbackEvent] = asyncio.Queue()

        async def handle(message: CallbackEvent) -> None:
            await received.put(message)

        events = [callback(f"e{n}") for n in range(3)]
        await broker.publish_callbacks(serialised(*events), correlation_id="batch")
        consumer = await broker.consume(broker.topology.refresher_queue, CallbackEvent, handle, FAST)
        got = [await asyncio.wait_for(received.get(), 10) for _ in events]
        assert sorted(got, key=lambda event: event.event_id or "") == events
        await consumer.stop()
        channel = await broker.connection.channel()
        queue = await channel.declare_queue(broker.topology.refresher_queue.name, passive=True)
        assert queue.declaration_result.message_count == 0

    async def test_single_event_message_of_before_batches_is_consumed(self, broker: Broker) -> None:
        """A plain JSON message as gateways sent before batches (rolling upgrade) is one event."""
        received: asyncio.Queue[CallbackEvent] = asyncio.Queue()

        async def handle(message: CallbackEvent) -> None:
            await received.put(message)

        channel = await broker.connection.channel()
        exchange = await channel.get_exchange(broker.topology.callbacks_exchange)
        sent = callback("old")
        await exchange.publish(aio_pika.Message(sent.model_dump_json().encode(),
                                                content_type="application/json",
                                                type="callback_event"), "callback")
        await broker.consume(broker.topology.refresher_queue, CallbackEvent, handle, FAST)
        assert await asyncio.wait_for(received.get(), 10) == sent
        await channel.close()

    async def test_poisoned_events_are_parked_alone_and_the_others_proceed(
            self, broker: Broker) -> None:
        """A malformed line and an event the handler refuses each go to the DLQ alone, as a
        plain message with its own reason and correlation id; the rest are handled."""
        handled: list[str | None] = []

        async def handle(message: CallbackEvent) -> None:
            if message.event_id == "refused":
                raise DeadLetter("project has no token")
            handled.append(message.event_id)

        malformed = b'{"correlation_id": "c-bad", "type": "wall_post_new"}'
        good, refused = callback("good"), callback("refused")
        await broker.publish_callbacks([serialised(good)[0], malformed, *serialised(refused)],
                                       correlation_id="batch")
        await broker.consume(broker.topology.refresher_queue, CallbackEvent, handle, FAST)
        parked = await dead_letters(broker, broker.topology.refresher_queue.dead_letter_queue, 2)
        by_id = {message.correlation_id: message for message in parked}
        assert set(by_id) == {"c-bad", "c-refused"}
        assert by_id["c-bad"].body == malformed
        assert "malformed callback_event: Field required" in str(
            (by_id["c-bad"].headers or {})[REASON_HEADER])
        assert CallbackEvent.model_validate_json(by_id["c-refused"].body) == refused
        assert (by_id["c-refused"].headers or {})[REASON_HEADER] == "project has no token"
        assert {message.content_type for message in parked} == {"application/json"}
        assert handled == ["good"]

    async def test_a_retry_redelivers_the_batch_and_only_the_failing_event_is_parked(
            self, broker: Broker) -> None:
        """One event keeps failing: the whole batch comes back (the others are redone —
        handlers are idempotent), nothing is parked before the last attempt, and then
        exactly the failing event and the malformed line are parked, once each."""
        attempts: dict[str | None, int] = {}

        async def handle(message: CallbackEvent) -> None:
            attempts[message.event_id] = attempts.get(message.event_id, 0) + 1
            if message.event_id == "flaky":
                raise ConnectionError("database unavailable")

        await broker.publish_callbacks([*serialised(callback("fine"), callback("flaky")), b"{"],
                                       correlation_id="batch")
        await broker.consume(broker.topology.refresher_queue, CallbackEvent, handle, FAST)
        parked = await dead_letters(broker, broker.topology.refresher_queue.dead_letter_queue, 2)
        reasons = sorted(str((message.headers or {})[REASON_HEADER]) for message in parked)
        assert reasons[0] == "gave up after 3 attempts: ConnectionError: database unavailable"
        assert reasons[1].startswith("malformed callback_event: Invalid JSON")
        assert attempts == {"fine": 3, "flaky": 3}


class TestNodeUrls:
    @pytest.mark.parametrize(("url", "nodes"), [
        ("amqp://guest:guest@127.0.0.1:5672/", ["amqp://guest:guest@127.0.0.1:5672/"]),
        ("amqp://u:p@a:5672,b:5673,c/vh?heartbeat=5",
         ["amqp://u:p@a:5672/vh?heartbeat=5", "amqp://u:p@b:5673/vh?heartbeat=5",
          "amqp://u:p@c/vh?heartbeat=5"]),  # no port: AMQP's default
        ("amqps://u:p%40x@a:5671,b:5671/", ["amqps://u:p%40x@a:5671/", "amqps://u:p%40x@b:5671/"]),
    ])
    def test_each_node_gets_the_credentials_vhost_and_query(self, url: str,
                                                           nodes: list[str]) -> None:
        """A MongoDB-style host list becomes one URL per node with the shared parts."""
        assert node_urls(url) == nodes


class TestClusterConnection:
    async def test_a_dead_node_is_skipped_and_the_live_one_kept_on_reconnection(
            self, amqp_url: str, unique_name: str) -> None:
        """With the first listed node down, the connection goes to the next one; when
        that connection drops, it reconnects to the node it was on (tried first).
        A node that dies: tests/resilience/test_rabbit_cluster.py."""
        live = node_urls(amqp_url)[0]
        dead_port = free_port()  # nothing listens there
        listed = live.replace("@127.0.0.1:", f"@127.0.0.1:{dead_port},127.0.0.1:", 1)
        with capture_logs() as logs:
            connection = await connect_cluster(listed, client_name=unique_name, timeout=10)
            try:
                assert isinstance(connection, ClusterConnection)
                assert connection.url.port != dead_port
                reconnected = asyncio.Event()
                connection.reconnect_callbacks.add(lambda *_: reconnected.set())
                assert await close_connections(unique_name) == 1
                await asyncio.wait_for(reconnected.wait(), 30)
                channel = await connection.channel()
                await channel.close()
            finally:
                await connection.close()
        skipped = [entry for entry in logs if entry["event"] == "broker_node_unavailable"]
        assert [entry["node"] for entry in skipped] == [f"127.0.0.1:{dead_port}"]
