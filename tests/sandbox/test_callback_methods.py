"""groups.* Callback API methods: servers, settings, confirmation code (schema-checked)."""

from __future__ import annotations

import asyncio

from tests.support.callbacks import (
    CallbackReceiver,
    ReceivedRequest,
    connect_server,
    server_status,
    wait_for_status,
)
from tests.support.sandbox import RunningSandbox


class TestCallbackServerMethods:
    async def test_add_list_edit_delete(
            self, sandbox: RunningSandbox, receiver: CallbackReceiver) -> None:
        """A server's lifecycle through add, getCallbackServers, edit and delete."""
        community, admin = await sandbox.community_with_admin()
        receiver.confirmation_code = community.confirmation_code
        group_id = community.group_id
        added = await sandbox.api("groups.addCallbackServer", admin.token, group_id=group_id,
                                  url=receiver.url, title="planner", secret_key="k1")
        server_id = added["response"]["server_id"]
        await wait_for_status(sandbox, group_id, admin.token, server_id, "ok")
        listed = await sandbox.api("groups.getCallbackServers", admin.token, group_id=group_id)
        assert listed["response"] == {"count": 1, "items": [{
            "id": server_id, "title": "planner", "creator_id": admin.user_id,
            "url": receiver.url, "secret_key": "k1", "status": "ok"}]}

        edited = await sandbox.api("groups.editCallbackServer", admin.token, group_id=group_id,
                                   server_id=server_id, url=receiver.url, title="renamed",
                                   secret_key="k2")
        assert edited == {"response": 1}
        await wait_for_status(sandbox, group_id, admin.token, server_id, "ok")
        item = (await sandbox.api("groups.getCallbackServers", admin.token,
                                  group_id=group_id))["response"]["items"][0]
        assert (item["title"], item["secret_key"]) == ("renamed", "k2")
        confirmations = [r for r in receiver.requests if r.type == "confirmation"]
        assert len(confirmations) == 2, "adding and editing each run the handshake"
        assert confirmations[1].payload["secret"] == "k2"

        deleted = await sandbox.api("groups.deleteCallbackServer", admin.token,
                                    group_id=group_id, server_id=server_id)
        assert deleted == {"response": 1}
        listed = await sandbox.api("groups.getCallbackServers", admin.token, group_id=group_id)
        assert listed["response"] == {"count": 0, "items": []}
        missing = await sandbox.api("groups.deleteCallbackServer", admin.token,
                                    group_id=group_id, server_id=server_id)
        assert missing["error"]["error_code"] == 104

    async def test_server_ids_filter(self, sandbox: RunningSandbox) -> None:
        """server_ids limits getCallbackServers to those servers."""
        community, admin = await sandbox.community_with_admin()
        ids = []
        for n in range(3):
            added = await sandbox.api("groups.addCallbackServer", admin.token,
                                      group_id=community.group_id,
                                      url=f"http://127.0.0.1:9/{n}", title=f"s{n}")
            ids.append(added["response"]["server_id"])
        listed = await sandbox.api("groups.getCallbackServers", admin.token,
                                   group_id=community.group_id, server_ids=f"{ids[0]},{ids[2]}")
        assert [item["id"] for item in listed["response"]["items"]] == [ids[0], ids[2]]

    async def test_invalid_server_params(self, sandbox: RunningSandbox) -> None:
        """A non-http url or a title over 14 characters: error 100."""
        community, admin = await sandbox.community_with_admin()
        for url, title in (("ftp://x", "ok"), ("http://127.0.0.1/", "fifteen chars!!")):
            reply = await sandbox.api("groups.addCallbackServer", admin.token,
                                      group_id=community.group_id, url=url, title=title)
            assert reply["error"]["error_code"] == 100

    async def test_settings_round_trip(
            self, sandbox: RunningSandbox, receiver: CallbackReceiver) -> None:
        """setCallbackSettings flags and api_version come back from getCallbackSettings."""
        community, admin = await sandbox.community_with_admin()
        server_id = await connect_server(sandbox, receiver, community, admin.token,
                                         events=("wall_post_new", "wall_repost"),
                                         api_version="5.131")
        reply = await sandbox.api("groups.getCallbackSettings", admin.token,
                                  group_id=community.group_id, server_id=server_id)
        settings = reply["response"]
        assert settings["api_version"] == "5.131"
        assert settings["events"]["wall_post_new"] == 1 and settings["events"]["wall_repost"] == 1
        assert settings["events"]["wall_schedule_post_new"] == 0
        await sandbox.api("groups.setCallbackSettings", admin.token, group_id=community.group_id,
                          server_id=server_id, wall_post_new=0)
        reply = await sandbox.api("groups.getCallbackSettings", admin.token,
                                  group_id=community.group_id, server_id=server_id)
        assert reply["response"]["events"]["wall_post_new"] == 0
        assert reply["response"]["events"]["wall_repost"] == 1, "unmentioned flags are kept"


class TestConfirmationHandshake:
    async def test_correct_code_confirms(
            self, sandbox: RunningSandbox, receiver: CallbackReceiver) -> None:
        """The handshake posts type confirmation with the group id; the right code → ok."""
        community, admin = await sandbox.community_with_admin()
        await connect_server(sandbox, receiver, community, admin.token)
        confirmation = receiver.requests[0]
        assert confirmation.type == "confirmation"
        assert confirmation.payload["group_id"] == community.group_id

    async def test_code_with_whitespace_confirms(
            self, sandbox: RunningSandbox, receiver: CallbackReceiver) -> None:
        """The reply body is compared stripped."""
        community, admin = await sandbox.community_with_admin()
        receiver.confirmation_code = f"  {community.confirmation_code}\n"
        added = await sandbox.api("groups.addCallbackServer", admin.token,
                                  group_id=community.group_id, url=receiver.url, title="t")
        await wait_for_status(sandbox, community.group_id, admin.token,
                              added["response"]["server_id"], "ok")

    async def test_wrong_code_fails(
            self, sandbox: RunningSandbox, receiver: CallbackReceiver) -> None:
        """A wrong code, a non-200 reply or no server at all → failed."""
        community, admin = await sandbox.community_with_admin()
        receiver.confirmation_code = "deadbeef" if community.confirmation_code != "deadbeef" \
            else "beefdead"
        added = await sandbox.api("groups.addCallbackServer", admin.token,
                                  group_id=community.group_id, url=receiver.url, title="t")
        server_id = added["response"]["server_id"]
        await wait_for_status(sandbox, community.group_id, admin.token, server_id, "failed")

        receiver.reply = lambda request: (500, community.confirmation_code, {})
        await sandbox.api("groups.editCallbackServer", admin.token, group_id=community.group_id,
                          server_id=server_id, url=receiver.url, title="t")
        await receiver.wait_for(lambda r: len(r.requests) == 2)
        await wait_for_status(sandbox, community.group_id, admin.token, server_id, "failed")

        await sandbox.api("groups.editCallbackServer", admin.token, group_id=community.group_id,
                          server_id=server_id, url="http://127.0.0.1:9/closed", title="t")
        await wait_for_status(sandbox, community.group_id, admin.token, server_id, "failed")

    async def test_status_is_wait_during_handshake(
            self, sandbox: RunningSandbox, receiver: CallbackReceiver) -> None:
        """While the receiver has not answered, the server's status is ``wait``."""
        community, admin = await sandbox.community_with_admin()
        receiver.confirmation_code = community.confirmation_code
        release = asyncio.Event()

        async def hold(request: ReceivedRequest) -> None:
            await release.wait()

        receiver.before_reply = hold
        added = await sandbox.api("groups.addCallbackServer", admin.token,
                                  group_id=community.group_id, url=receiver.url, title="t")
        server_id = added["response"]["server_id"]
        await receiver.wait_for(lambda r: len(r.requests) == 1)
        assert await server_status(sandbox, community.group_id, admin.token, server_id) == "wait"
        release.set()
        await wait_for_status(sandbox, community.group_id, admin.token, server_id, "ok")

    async def test_no_events_to_unconfirmed_servers(
            self, sandbox: RunningSandbox, receiver: CallbackReceiver) -> None:
        """A failed server gets no events, even with them enabled."""
        community, admin = await sandbox.community_with_admin()
        receiver.confirmation_code = "wrong"
        added = await sandbox.api("groups.addCallbackServer", admin.token,
                                  group_id=community.group_id, url=receiver.url, title="t")
        server_id = added["response"]["server_id"]
        await wait_for_status(sandbox, community.group_id, admin.token, server_id, "failed")
        await sandbox.api("groups.setCallbackSettings", admin.token, group_id=community.group_id,
                          server_id=server_id, wall_post_new=1)
        await sandbox.control.create_post(community.group_id, "unseen")
        assert await sandbox.control.deliveries(group_id=community.group_id) == []
        assert receiver.events() == []
