"""The Callback API sender: which events go where, their shape, retries and the delivery log."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator

import pytest

from tests.support.callbacks import (
    CallbackReceiver,
    ReceivedRequest,
    Reply,
    connect_server,
    finished_deliveries,
    running_receiver,
)
from tests.support.pauses import RecordedPauses
from tests.support.sandbox import RunningSandbox, running_sandbox
from tools.vk_sandbox.config import RETRY_SCHEDULE_SECONDS
from tools.vk_sandbox.delivery import parse_retry_after

EVENT_ID = re.compile(r"^[0-9a-f]{40}$")


class TestEvents:
    async def test_envelope(self, sandbox: RunningSandbox, receiver: CallbackReceiver) -> None:
        """An event carries type, group_id, a 40-hex event_id, v and secret (schema-checked)."""
        community, admin = await sandbox.community_with_admin()
        await connect_server(sandbox, receiver, community, admin.token, secret="top",
                             api_version="5.199")
        created = await sandbox.control.create_post(community.group_id, "hello",
                                                    attachments=["photo-1_5"])
        await receiver.wait_for(lambda r: len(r.events()) == 1)
        payload = receiver.events()[0].payload
        assert payload["type"] == "wall_post_new" and payload["group_id"] == community.group_id
        assert EVENT_ID.match(payload["event_id"])
        assert (payload["v"], payload["secret"]) == ("5.199", "top")
        assert payload["object"] == created
        assert payload["object"]["post_type"] == "post"
        assert "postponed_id" not in payload["object"]

    async def test_no_secret_when_unset(
            self, sandbox: RunningSandbox, receiver: CallbackReceiver) -> None:
        """Without a secret_key the payload has no ``secret``."""
        community, admin = await sandbox.community_with_admin()
        await connect_server(sandbox, receiver, community, admin.token, secret="")
        await sandbox.control.create_post(community.group_id, "hello")
        await receiver.wait_for(lambda r: len(r.events()) == 1)
        assert "secret" not in receiver.events()[0].payload

    async def test_each_source_fires_its_event(
            self, sandbox: RunningSandbox, receiver: CallbackReceiver) -> None:
        """wall.post, control posts (published, postponed, suggested), reposts and deletes
        each send the event VK sends for them."""
        community, admin = await sandbox.community_with_admin()
        await connect_server(sandbox, receiver, community, admin.token)
        group_id = community.group_id
        await sandbox.api("wall.post", admin.token, owner_id=-group_id, from_group=1,
                          message="via api")
        published = await sandbox.control.create_post(group_id, "via control")
        scheduled = await sandbox.control.create_post(group_id, "later",
                                                      publish_date=int(time.time()) + 3600)
        await sandbox.control.create_post(group_id, "idea", post_type="suggest", from_id=321)
        repost = await sandbox.control.create_post(group_id, "look", repost=True, from_id=321)
        await sandbox.control.delete_post(group_id, scheduled["id"])
        await receiver.wait_for(lambda r: len(r.events()) == 6)

        by_type: dict[str, list[ReceivedRequest]] = {}
        for request in receiver.events():
            by_type.setdefault(request.type, []).append(request)
        assert sorted((kind, len(items)) for kind, items in by_type.items()) == [
            ("wall_post_new", 3), ("wall_repost", 1), ("wall_schedule_post_delete", 1),
            ("wall_schedule_post_new", 1)]
        post_types = sorted(r.payload["object"]["post_type"] for r in by_type["wall_post_new"])
        assert post_types == ["post", "post", "suggest"]
        reposted = by_type["wall_repost"][0].payload["object"]
        assert reposted == repost
        assert reposted["from_id"] == 321
        assert reposted["copy_history"][0]["id"] == published["id"]
        assert by_type["wall_schedule_post_delete"][0].payload["object"]["id"] == scheduled["id"]
        event_ids = {r.payload["event_id"] for r in receiver.events()}
        assert len(event_ids) == 6, "event ids are unique"

    async def test_only_enabled_events(
            self, sandbox: RunningSandbox, receiver: CallbackReceiver) -> None:
        """Event types the server did not enable are not sent to it."""
        community, admin = await sandbox.community_with_admin()
        await connect_server(sandbox, receiver, community, admin.token,
                             events=("wall_schedule_post_new",))
        await sandbox.control.create_post(community.group_id, "published: not wanted")
        await sandbox.control.create_post(community.group_id, "scheduled",
                                          publish_date=int(time.time()) + 3600)
        await receiver.wait_for(lambda r: len(r.events()) == 1)
        assert receiver.events()[0].type == "wall_schedule_post_new"
        deliveries = await sandbox.control.deliveries(group_id=community.group_id)
        assert [d["type"] for d in deliveries] == ["wall_schedule_post_new"]

    async def test_deleted_server_gets_nothing(
            self, sandbox: RunningSandbox, receiver: CallbackReceiver) -> None:
        """After deleteCallbackServer no event is sent there."""
        community, admin = await sandbox.community_with_admin()
        server_id = await connect_server(sandbox, receiver, community, admin.token)
        await sandbox.api("groups.deleteCallbackServer", admin.token,
                          group_id=community.group_id, server_id=server_id)
        await sandbox.control.create_post(community.group_id, "after")
        assert await sandbox.control.deliveries(group_id=community.group_id) == []

    async def test_raw_callbacks(self, sandbox: RunningSandbox, receiver: CallbackReceiver
                                 ) -> None:
        """POST /_sandbox/callbacks sends raw events, one or many, through the same sender."""
        community, admin = await sandbox.community_with_admin()
        await connect_server(sandbox, receiver, community, admin.token)
        post = (await sandbox.control.create_post(community.group_id, "base"))
        await receiver.wait_for(lambda r: len(r.events()) == 1)
        single = await sandbox.control.send_callback(community.group_id, "wall_repost", post)
        bulk = await sandbox.control.send_callbacks(
            [(community.group_id, "wall_post_new", {**post, "id": 1000 + n}) for n in range(50)])
        assert len(set(bulk)) == 50 and single not in bulk
        await receiver.wait_for(lambda r: len(r.events()) == 52)
        received_ids = {r.payload["event_id"] for r in receiver.events()}
        assert {single, *bulk} <= received_ids
        deliveries = await finished_deliveries(sandbox, 52, group_id=community.group_id)
        assert all(d["delivered"] for d in deliveries)


class TestDelivery:
    async def test_deliveries_are_concurrent(
            self, sandbox: RunningSandbox, receiver: CallbackReceiver) -> None:
        """An unanswered event does not hold up the next one (VK sends in parallel)."""
        community, admin = await sandbox.community_with_admin()
        await connect_server(sandbox, receiver, community, admin.token)
        release = asyncio.Event()

        async def hold_slow(request: ReceivedRequest) -> None:
            if request.payload["object"]["text"] == "slow":
                await release.wait()

        receiver.before_reply = hold_slow
        await sandbox.control.create_post(community.group_id, "slow")
        await sandbox.control.create_post(community.group_id, "fast")
        await receiver.wait_for(lambda r: len(r.events()) == 2,
                                what="the second event while the first is unanswered")
        deliveries = await finished_deliveries(sandbox, 1, group_id=community.group_id)
        assert [d["delivered"] for d in deliveries] == [True]
        release.set()
        deliveries = await finished_deliveries(sandbox, 2, group_id=community.group_id)
        assert all(d["delivered"] for d in deliveries)

    async def test_retry_schedule_and_give_up(self, receiver: CallbackReceiver) -> None:
        """Failing replies are retried with X-Retry-Counter 1..5 after VK's schedule (10 s,
        3 min, 10 min, 30 min, 1 h: the pauses are recorded, not taken), then given up; all
        tries are logged."""
        pauses = RecordedPauses()
        async with running_sandbox(retry_scale=1.0, sleep=pauses) as sandbox:
            community, admin = await sandbox.community_with_admin()
            await connect_server(sandbox, receiver, community, admin.token)
            receiver.reply = lambda request: (200, "not ok", {})
            await sandbox.control.create_post(community.group_id, "doomed")
            [delivery] = await finished_deliveries(sandbox, 1, group_id=community.group_id)
        assert delivery["gave_up"] and not delivery["delivered"]
        attempts = delivery["attempts"]
        assert [a["retry_counter"] for a in attempts] == [None, 1, 2, 3, 4, 5]
        assert all(a["status"] == 200 and a["body"] == "not ok" for a in attempts)
        received = receiver.events()
        assert [r.retry_counter for r in received] == [None, 1, 2, 3, 4, 5]
        assert len({r.payload["event_id"] for r in received}) == 1, "retries resend the event"
        assert pauses.seconds == list(RETRY_SCHEDULE_SECONDS) == [10, 180, 600, 1800, 3600]

    async def test_success_after_failures(
            self, sandbox: RunningSandbox, receiver: CallbackReceiver) -> None:
        """Only HTTP 200 with body ``ok`` ends the delivery; 500 and other bodies retry."""
        await sandbox.control.set_config(retry_scale=0.001)
        community, admin = await sandbox.community_with_admin()
        await connect_server(sandbox, receiver, community, admin.token)
        replies: Iterator[Reply] = iter([(500, "ok", {}), (200, "OK!", {}), (200, "ok", {})])
        receiver.reply = lambda request: next(replies)
        await sandbox.control.create_post(community.group_id, "eventually")
        [delivery] = await finished_deliveries(sandbox, 1, group_id=community.group_id)
        assert delivery["delivered"] and not delivery["gave_up"]
        assert [(a["status"], a["retry_counter"]) for a in delivery["attempts"]] == [
            (500, None), (200, 1), (200, 2)]

    async def test_connection_errors_are_failures(self, sandbox: RunningSandbox) -> None:
        """A receiver gone after confirming: every try fails with status null, then give-up."""
        await sandbox.control.set_config(retry_scale=0.0001)
        community, admin = await sandbox.community_with_admin()
        async with running_receiver() as short_lived:
            await connect_server(sandbox, short_lived, community, admin.token)
        await sandbox.control.create_post(community.group_id, "nobody home")
        [delivery] = await finished_deliveries(sandbox, 1, group_id=community.group_id)
        assert delivery["gave_up"] and not delivery["delivered"]
        assert [a["retry_counter"] for a in delivery["attempts"]] == [None, 1, 2, 3, 4, 5]
        assert all(a["status"] is None and a["body"] for a in delivery["attempts"])

    async def test_retry_after_is_honoured(
            self, sandbox: RunningSandbox, receiver: CallbackReceiver) -> None:
        """503 with Retry-After: 1 delays the next try by a real second, though the scaled
        schedule slot is 10 ms."""
        await sandbox.control.set_config(retry_scale=0.001)
        community, admin = await sandbox.community_with_admin()
        await connect_server(sandbox, receiver, community, admin.token)
        replies: Iterator[Reply] = iter([(503, "busy", {"Retry-After": "1"}), (200, "ok", {})])
        receiver.reply = lambda request: next(replies)
        await sandbox.control.create_post(community.group_id, "patience")
        await receiver.wait_for(lambda r: len(r.events()) == 2, timeout=3.0)
        first, second = receiver.events()
        assert second.retry_counter == 1
        assert second.at - first.at >= 0.95

    async def test_retry_after_ignored_for_other_statuses(
            self, sandbox: RunningSandbox, receiver: CallbackReceiver) -> None:
        """Retry-After on a 500 does not change the (scaled) schedule."""
        await sandbox.control.set_config(retry_scale=0.001)
        community, admin = await sandbox.community_with_admin()
        await connect_server(sandbox, receiver, community, admin.token)
        replies: Iterator[Reply] = iter([(500, "no", {"Retry-After": "30"}), (200, "ok", {})])
        receiver.reply = lambda request: next(replies)
        await sandbox.control.create_post(community.group_id, "quick")
        await receiver.wait_for(lambda r: len(r.events()) == 2, timeout=2.0)

    async def test_duplicate_fault(self, sandbox: RunningSandbox, receiver: CallbackReceiver
                                   ) -> None:
        """duplicate_callbacks: the next N events arrive twice with the same event_id."""
        community, admin = await sandbox.community_with_admin()
        await connect_server(sandbox, receiver, community, admin.token)
        await sandbox.control.inject_fault("duplicate_callbacks", count=1)
        await sandbox.control.create_post(community.group_id, "twice")
        await sandbox.control.create_post(community.group_id, "once")
        await receiver.wait_for(lambda r: len(r.events()) == 3)
        texts = sorted(r.payload["object"]["text"] for r in receiver.events())
        assert texts == ["once", "twice", "twice"]
        twice = [r.payload["event_id"] for r in receiver.events()
                 if r.payload["object"]["text"] == "twice"]
        assert twice[0] == twice[1]


class TestRetryAfterParsing:
    @pytest.mark.parametrize(("header", "expected"), [
        ("120", 120.0), ("0", 0.0), ("-5", 0.0), ("1.5", 1.5), (None, None), ("soon", None),
        ("Wed, 21 Oct 2015 07:28:10 GMT", 10.0),
    ])
    def test_values(self, header: str | None, expected: float | None) -> None:
        """Delta-seconds and HTTP dates (here 10 s after 'now') are understood."""
        now = 1445412480.0  # 2015-10-21 07:28:00 GMT
        assert parse_retry_after(header, now) == expected
