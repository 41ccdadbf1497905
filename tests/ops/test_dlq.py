"""``dlq list|replay|drop`` against real RabbitMQ, with a refresher in-process where it matters."""

from __future__ import annotations

from datetime import UTC, datetime

import aio_pika
from pymongo.asynchronous.database import AsyncDatabase

from shared.broker import (
    BATCH,
    ORIGINAL_QUEUE_HEADER,
    REASON_HEADER,
    AckPolicy,
    Broker,
    DeadLetter,
)
from shared.messages import CallbackEvent
from shared.mongo import PROCESSED_EVENTS, ContentType, Document
from shared.settings import Settings
from shared.topology import CALLBACK_ROUTING_KEY
from tests.e2e.stack import cached_ids, callback_path, stack_settings
from tests.support.documents import insert_project
from tests.support.ops import Ops, Outcome, ScriptedPrompts
from tests.support.sandbox import RunningSandbox
from tests.support.waiting import eventually

GAVE_UP = "gave up after 5 attempts: VkHttpError: VK call failed in wall.get: 502"


def event(project_id: str = "p", group_id: int = 1, post_id: int = 1) -> CallbackEvent:
    return CallbackEvent(type="wall_post_new", group_id=group_id, event_id=f"e{post_id}",
                         object={"id": post_id, "post_type": "post"}, project_id=project_id,
                         received_at=datetime.now(UTC))


async def park(broker: Broker, message: CallbackEvent, reason: str = GAVE_UP) -> None:
    """Dead-letter ``message`` as the refresher's consumer does: to the DLX, with the reason."""
    queue = broker.topology.refresher_queue
    await broker.publish(message, exchange=broker.topology.dead_letter_exchange,
                         routing_key=queue.name, headers={
                             REASON_HEADER: reason, ORIGINAL_QUEUE_HEADER: queue.name,
                             "x-dead-lettered-at": datetime.now(UTC).isoformat()})


def rows(listing: Outcome) -> list[str]:
    """The message lines of a ``dlq list --queue …`` output."""
    return listing.out.splitlines()[2:]


async def refresher_dlq(ops: Ops, count: int) -> Outcome:
    """``dlq list --queue refresher`` once it shows ``count`` messages."""
    async def listed() -> Outcome | None:
        result = await ops("dlq", "list", "--queue", "refresher")
        assert result.code == 0, result.err
        return result if f".dlq: {count} message(s)" in result.out else None
    return await eventually(listed, what=f"{count} message(s) in the refresher's DLQ")


class TestDlqList:
    async def test_malformed_message_is_shown_with_its_reason_and_kept(
            self, vk_settings: Settings, broker: Broker) -> None:
        """The consumer parks a malformed message; list shows why, twice (nothing consumed),
        and replay refuses it (it stays)."""
        settings = stack_settings(vk_settings)
        ops = Ops(settings)
        async with callback_path(settings):
            channel = await broker.connection.channel()
            exchange = await channel.get_exchange(broker.topology.callbacks_exchange)
            await exchange.publish(aio_pika.Message(b'{"type": "wall_post_new"}',
                                                    correlation_id="bad-1"), CALLBACK_ROUTING_KEY)
            first = await refresher_dlq(ops, 1)
            [row] = rows(first)
            assert row.split()[2:4] == ["bad-1", broker.topology.refresher_queue.name]
            assert "malformed callback_event: Field required" in row
            assert row.endswith('{"type":"wall_post_new"}')
            again = await ops("dlq", "list", "--queue", "refresher")
            assert rows(again) == rows(first)

            replay = await ops("dlq", "replay", "--all")
            assert replay.code == 1
            assert replay.err.splitlines() == [
                f"warning: not replayed bad-1 from {broker.topology.refresher_queue.dead_letter_queue}"
                ": not a valid callback_event (Field required); drop it instead",
                "error: 1 of 1 message(s) not replayed; they stay in the DLQ"]
            assert len(rows(await refresher_dlq(ops, 1))) == 1
            await channel.close()

    async def test_broker_dead_lettered_message_and_both_queues(
            self, ops: Ops, broker: Broker) -> None:
        """A message the broker dead-lettered (rejected) shows the x-death reason and queue;
        without --queue both DLQs are listed."""
        await broker.publish_callback(event())
        channel = await broker.connection.channel()
        queue = await channel.get_queue(broker.topology.refresher_queue.name, ensure=False)
        message = await eventually(lambda: queue.get(no_ack=False, fail=False),
                                   what="the message in the refresher queue")
        await message.reject(requeue=False)
        [row] = rows(await refresher_dlq(ops, 1))
        assert row.split()[3:6] == [broker.topology.refresher_queue.name, "broker:", "rejected"]
        both = await ops("dlq", "list")
        assert f"{broker.topology.refresher_queue.dead_letter_queue}: 1 message(s)" in both.out
        assert f"{broker.topology.notifier_queue.dead_letter_queue}: 0 message(s)" in both.out
        await channel.close()


class TestDlqReplay:
    async def test_replayed_event_is_refreshed_and_leaves_the_dlq(
            self, vk_settings: Settings, vk_sandbox: RunningSandbox, db: AsyncDatabase[Document],
            broker: Broker) -> None:
        """A parked valid event, replayed by correlation id, reaches the refresher: the cache
        gets the post; the DLQ is empty afterwards; the other parked message stays."""
        settings = stack_settings(vk_settings)
        ops = Ops(settings)
        community = await vk_sandbox.control.create_community()
        admin = await vk_sandbox.control.create_user(admin_of=[community.group_id])
        project_id = await insert_project(db, group_id=community.group_id, token=admin.token)
        # No callback server: VK tells nobody, as if the event had been lost on the way.
        post = await vk_sandbox.control.create_post(community.group_id, "Missed")
        missed = event(project_id, community.group_id, post["id"])
        other = event(project_id, community.group_id, post["id"] + 1000)
        # The first delivery had claimed the event before failing; the replay keeps the
        # correlation id, so the refresher's dedup lets it carry on.
        await db[PROCESSED_EVENTS].insert_one({
            "_id": f"{community.group_id}:{missed.event_id}",
            "claimed_by": missed.correlation_id, "seen_at": datetime.now(UTC)})
        await park(broker, missed)
        await park(broker, other)
        async with callback_path(settings):
            listed = await refresher_dlq(ops, 2)
            assert [row.split()[2] for row in rows(listed)] == [missed.correlation_id,
                                                                 other.correlation_id]
            assert GAVE_UP in rows(listed)[0]
            assert await cached_ids(db, project_id, ContentType.PUBLISHED) == set()

            replay = await ops("dlq", "replay", "--correlation-id", missed.correlation_id)
            assert replay.code == 0, replay.err
            assert replay.out == (
                f"replayed {missed.correlation_id} from "
                f"{broker.topology.refresher_queue.dead_letter_queue} to "
                f"{broker.topology.callbacks_exchange} (callback)\n")

            async def refreshed() -> bool:
                return post["id"] in await cached_ids(db, project_id, ContentType.PUBLISHED)

            await eventually(refreshed, what="the replayed event's refresh")
            [left] = rows(await refresher_dlq(ops, 1))
            assert left.split()[2] == other.correlation_id

    async def test_unknown_correlation_id(self, ops: Ops, broker: Broker) -> None:
        """Asking for a correlation id that is not parked is a failure (exit 1)."""
        await park(broker, event())
        result = await ops("dlq", "replay", "--correlation-id", "nope")
        assert result.code == 1
        assert result.err == "error: no dead-lettered message with correlation id nope\n"
        assert len(rows(await refresher_dlq(ops, 1))) == 1


class TestDlqDrop:
    async def test_drop_asks_first_and_deletes_only_the_selected(
            self, ops: Ops, broker: Broker) -> None:
        """Declined: nothing changes (order kept). Confirmed: only the selected message goes;
        --yes drops the rest without a question."""
        first, second = event(post_id=1), event(post_id=2)
        await park(broker, first)
        await park(broker, second)
        before = rows(await refresher_dlq(ops, 2))

        declined = await ops("dlq", "drop", "--correlation-id", first.correlation_id,
                             prompts=ScriptedPrompts(answers=["n\n"]))
        assert (declined.code, declined.err) == (1, "error: not confirmed; nothing dropped\n")
        assert first.correlation_id in declined.out and second.correlation_id not in declined.out
        assert rows(await refresher_dlq(ops, 2)) == before

        script = ScriptedPrompts(answers=["y\n"])
        dropped = await ops("dlq", "drop", "--queue", "refresher", "--correlation-id",
                            first.correlation_id, prompts=script)
        assert dropped.code == 0, dropped.err
        assert script.asked == ["Drop these 1 message(s) for good? [y/N] "]
        assert dropped.out.endswith("dropped 1 message(s)\n")
        [left] = rows(await refresher_dlq(ops, 1))
        assert left.split()[2] == second.correlation_id

        forced = await ops("dlq", "drop", "--all", "--yes")
        assert forced.code == 0, forced.err
        await refresher_dlq(ops, 0)

    async def test_selection_is_required(self, ops: Ops) -> None:
        """Neither --all nor --correlation-id: usage error."""
        result = await ops("dlq", "drop")
        assert result.code == 2
        assert "one of the arguments --all --correlation-id is required" in result.err


async def taken_from_refresher_queue(broker: Broker) -> aio_pika.abc.AbstractIncomingMessage:
    channel = await broker.connection.channel()
    queue = await channel.get_queue(broker.topology.refresher_queue.name, ensure=False)
    message = await eventually(lambda: queue.get(no_ack=True, fail=False),
                               what="a message in the refresher queue")
    await channel.close()
    return message


class TestDlqBatches:
    async def test_event_parked_from_a_batch_is_listed_and_replayed_alone(
            self, ops: Ops, broker: Broker) -> None:
        """The consumer parks one event of a gateway batch: list shows that event (its
        correlation id and body), replay sends just it back, as a plain message."""
        good, refused = event(post_id=1), event(post_id=2)

        async def handle(message: CallbackEvent) -> None:
            if message.correlation_id == refused.correlation_id:
                raise DeadLetter("project has no token")

        consumer = await broker.consume(broker.topology.refresher_queue, CallbackEvent, handle,
                                        AckPolicy(max_attempts=1, prefetch=4))
        await broker.publish_callbacks([good.model_dump_json().encode(),
                                        refused.model_dump_json().encode()],
                                       correlation_id=good.correlation_id)
        [row] = rows(await refresher_dlq(ops, 1))
        await consumer.stop()
        assert row.split()[2] == refused.correlation_id
        assert "project has no token" in row and '{"type":"wall_post_new"' in row

        replay = await ops("dlq", "replay", "--correlation-id", refused.correlation_id)
        assert replay.code == 0, replay.err
        back = await taken_from_refresher_queue(broker)
        assert back.content_type == "application/json"
        assert CallbackEvent.model_validate_json(back.body) == refused
        await refresher_dlq(ops, 0)

    async def test_batch_parked_by_the_broker_is_listed_and_replayed_whole(
            self, ops: Ops, broker: Broker) -> None:
        """A batch the broker dead-lettered itself (rejected) shows as ``batch of 2`` and is
        replayed as that batch."""
        events = [event(post_id=1), event(post_id=2)]
        await broker.publish_callbacks([item.model_dump_json().encode() for item in events],
                                       correlation_id=events[0].correlation_id)
        channel = await broker.connection.channel()
        queue = await channel.get_queue(broker.topology.refresher_queue.name, ensure=False)
        message = await eventually(lambda: queue.get(no_ack=False, fail=False),
                                   what="the batch in the refresher queue")
        await message.reject(requeue=False)
        await channel.close()
        [row] = rows(await refresher_dlq(ops, 1))
        assert row.split()[2] == events[0].correlation_id
        assert "batch of 2:" in row

        replay = await ops("dlq", "replay", "--all")
        assert replay.code == 0, replay.err
        back = await taken_from_refresher_queue(broker)
        assert back.content_type == BATCH
        assert [CallbackEvent.model_validate_json(line) for line in back.body.split(b"\n")] == events
