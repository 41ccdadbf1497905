"""wall.get / getById / post / delete: VK's shapes (checked against the schema by the harness)."""

from __future__ import annotations

import time
from typing import Any

from tests.support.callbacks import CallbackReceiver, connect_server
from tests.support.sandbox import RunningSandbox
from tools.vk_sandbox.community import GUID_MEMORY_SECONDS, Community
from tools.vk_sandbox.control import CreatedCommunity, CreatedUser


async def post(sandbox: RunningSandbox, community: CreatedCommunity, admin: CreatedUser,
               message: str, **params: Any) -> int:
    reply = await sandbox.api("wall.post", admin.token, owner_id=-community.group_id,
                              from_group=1, message=message, **params)
    return int(reply["response"]["post_id"])


async def wall_get(sandbox: RunningSandbox, community: CreatedCommunity, admin: CreatedUser,
                   **params: Any) -> dict[str, Any]:
    reply = await sandbox.api("wall.get", admin.token, owner_id=-community.group_id, **params)
    response: dict[str, Any] = reply["response"]
    return response


class TestWallGet:
    async def test_newest_first_with_vk_fields(self, sandbox: RunningSandbox) -> None:
        """Published posts come newest first, with owner, author, date, type, attachments."""
        community, admin = await sandbox.community_with_admin()
        before = int(time.time())
        first = await post(sandbox, community, admin, "first")
        second = await post(sandbox, community, admin, "second",
                            attachments="photo-1_2,photo-1_3_abc")
        response = await wall_get(sandbox, community, admin)
        assert response["count"] == 2
        newest, oldest = response["items"]
        assert (newest["id"], oldest["id"]) == (second, first)
        assert newest["owner_id"] == newest["from_id"] == -community.group_id
        assert newest["post_type"] == "post" and newest["text"] == "second"
        assert before <= newest["date"] <= time.time()
        assert [a["photo"]["id"] for a in newest["attachments"]] == [2, 3]
        assert newest["attachments"][1]["photo"]["access_key"] == "abc"
        assert "postponed_id" not in newest

    async def test_pagination(self, sandbox: RunningSandbox) -> None:
        """offset/count page through the wall; count reports the total."""
        community, admin = await sandbox.community_with_admin()
        ids = [await post(sandbox, community, admin, f"post {n}") for n in range(7)]
        newest_first = list(reversed(ids))
        pages = []
        for offset in range(0, 7, 3):
            response = await wall_get(sandbox, community, admin, offset=offset, count=3)
            assert response["count"] == 7
            pages.append([item["id"] for item in response["items"]])
        assert pages == [newest_first[0:3], newest_first[3:6], newest_first[6:7]]
        assert (await wall_get(sandbox, community, admin, offset=10))["items"] == []
        assert (await wall_get(sandbox, community, admin, count=0))["items"] == []

    async def test_count_over_100_is_100(self, sandbox: RunningSandbox) -> None:
        """count above 100 (or negative) is error 100; exactly 100 is fine."""
        community, admin = await sandbox.community_with_admin()
        assert (await wall_get(sandbox, community, admin, count=100))["count"] == 0
        for count in (101, -1):
            reply = await sandbox.api("wall.get", admin.token, owner_id=-community.group_id,
                                      count=count)
            assert reply["error"]["error_code"] == 100

    async def test_filters(self, sandbox: RunningSandbox) -> None:
        """owner/all list published posts; postponed and suggests their own kinds."""
        community, admin = await sandbox.community_with_admin()
        published = await post(sandbox, community, admin, "now")
        scheduled = await post(sandbox, community, admin, "later",
                               publish_date=int(time.time()) + 3600)
        suggested = await sandbox.control.create_post(community.group_id, "please",
                                                      post_type="suggest", from_id=555)
        expected = {"owner": [published], "all": [published], "postponed": [scheduled],
                    "suggests": [suggested["id"]]}
        for wall_filter, ids in expected.items():
            response = await wall_get(sandbox, community, admin, filter=wall_filter)
            assert [item["id"] for item in response["items"]] == ids, wall_filter
            assert response["count"] == len(ids)
        postponed = (await wall_get(sandbox, community, admin, filter="postponed"))["items"][0]
        assert postponed["post_type"] == "postpone"
        suggestion = (await wall_get(sandbox, community, admin, filter="suggests"))["items"][0]
        assert suggestion["post_type"] == "suggest" and suggestion["from_id"] == 555

    async def test_postponed_are_for_admins(self, sandbox: RunningSandbox) -> None:
        """A reader sees published posts but not postponed ones (error 15)."""
        community, admin = await sandbox.community_with_admin()
        await post(sandbox, community, admin, "now")
        reader = await sandbox.control.create_user()
        assert (await wall_get(sandbox, community, reader))["count"] == 1
        reply = await sandbox.api("wall.get", reader.token, owner_id=-community.group_id,
                                  filter="postponed")
        assert reply["error"]["error_code"] == 15

    async def test_unknown_filter_and_owner(self, sandbox: RunningSandbox) -> None:
        """An unsupported filter or a wall that does not exist: error 100."""
        community, admin = await sandbox.community_with_admin()
        for params in ({"owner_id": -community.group_id, "filter": "bogus"},
                       {"owner_id": -999_999}, {}):
            reply = await sandbox.api("wall.get", admin.token, **params)
            assert reply["error"]["error_code"] == 100, params

    async def test_extended(self, sandbox: RunningSandbox) -> None:
        """extended=1 adds profiles and groups (checked against the extended schema)."""
        community, admin = await sandbox.community_with_admin("Named")
        response = await wall_get(sandbox, community, admin, extended=1)
        assert response["groups"][0]["id"] == community.group_id
        assert response["groups"][0]["name"] == "Named"


class TestWallGetById:
    async def test_by_id(self, sandbox: RunningSandbox) -> None:
        """posts="-G_A,-G_B" returns those posts, skipping unknown ones."""
        community, admin = await sandbox.community_with_admin()
        first = await post(sandbox, community, admin, "a")
        second = await post(sandbox, community, admin, "b")
        owner = -community.group_id
        reply = await sandbox.api("wall.getById", admin.token,
                                  posts=f"{owner}_{second},{owner}_{first},{owner}_999,-424242_1")
        assert [item["id"] for item in reply["response"]["items"]] == [second, first]
        assert reply["response"]["items"][1]["text"] == "a"

    async def test_malformed_reference(self, sandbox: RunningSandbox) -> None:
        """A post reference that is not OWNER_ID: error 100."""
        _, admin = await sandbox.community_with_admin()
        reply = await sandbox.api("wall.getById", admin.token, posts="nonsense")
        assert reply["error"]["error_code"] == 100


class TestWallPost:
    async def test_empty_post_is_refused(self, sandbox: RunningSandbox) -> None:
        """Neither message nor attachments: error 100."""
        community, admin = await sandbox.community_with_admin()
        reply = await sandbox.api("wall.post", admin.token, owner_id=-community.group_id,
                                  from_group=1)
        assert reply["error"]["error_code"] == 100

    async def test_bad_attachment_is_refused(self, sandbox: RunningSandbox) -> None:
        """An attachment that is not photoOWNER_ID: error 100."""
        community, admin = await sandbox.community_with_admin()
        reply = await sandbox.api("wall.post", admin.token, owner_id=-community.group_id,
                                  from_group=1, message="x", attachments="photo-1_2,video1")
        assert reply["error"]["error_code"] == 100

    async def test_post_as_user(self, sandbox: RunningSandbox) -> None:
        """Without from_group the admin is the author; created_by is the admin either way."""
        community, admin = await sandbox.community_with_admin()
        await sandbox.api("wall.post", admin.token, owner_id=-community.group_id, message="me")
        item = (await wall_get(sandbox, community, admin))["items"][0]
        assert item["from_id"] == admin.user_id and item["created_by"] == admin.user_id

    async def test_past_publish_date_publishes_now(self, sandbox: RunningSandbox) -> None:
        """publish_date in the past publishes immediately."""
        community, admin = await sandbox.community_with_admin()
        await post(sandbox, community, admin, "late", publish_date=int(time.time()) - 60)
        assert (await wall_get(sandbox, community, admin))["count"] == 1


class TestWallPostGuid:
    async def test_same_guid_same_wall_is_the_same_post(self, sandbox: RunningSandbox) -> None:
        """wall.post with a guid already used on that wall answers the first post's id and
        posts nothing; another guid, or another wall, is another post."""
        community, admin = await sandbox.community_with_admin()
        first = await post(sandbox, community, admin, "once", guid="g-1")
        again = await post(sandbox, community, admin, "once", guid="g-1")
        other = await post(sandbox, community, admin, "once", guid="g-2")
        assert again == first and other != first
        assert (await wall_get(sandbox, community, admin))["count"] == 2
        elsewhere, its_admin = await sandbox.community_with_admin()
        assert await post(sandbox, elsewhere, its_admin, "once", guid="g-1") >= 1
        assert (await wall_get(sandbox, elsewhere, its_admin))["count"] == 1

    def test_a_guid_is_remembered_for_an_hour(self) -> None:
        """After GUID_MEMORY_SECONDS the guid is forgotten (VK states no window)."""
        community = Community(group_id=1, name="c", token="t", confirmation_code="c")
        community.remember_guid("g", 7, now=1000.0)
        assert community.post_of_guid("g", now=1000.0 + GUID_MEMORY_SECONDS) == 7
        assert community.post_of_guid("g", now=1000.0 + GUID_MEMORY_SECONDS + 1) is None


class TestWallDelete:
    async def test_delete(self, sandbox: RunningSandbox) -> None:
        """wall.delete answers 1 and the post is gone; a second delete is error 104."""
        community, admin = await sandbox.community_with_admin()
        post_id = await post(sandbox, community, admin, "bye")
        reply = await sandbox.api("wall.delete", admin.token, owner_id=-community.group_id,
                                  post_id=post_id)
        assert reply == {"response": 1}
        assert (await wall_get(sandbox, community, admin))["count"] == 0
        again = await sandbox.api("wall.delete", admin.token, owner_id=-community.group_id,
                                  post_id=post_id)
        assert again["error"]["error_code"] == 104


class TestPostponedPosts:
    async def test_goes_live_with_postponed_id(
            self, sandbox: RunningSandbox, receiver: CallbackReceiver) -> None:
        """A scheduled post is published at its time under a new id with postponed_id, and
        wall_schedule_post_new then wall_post_new (carrying postponed_id) are sent."""
        community, admin = await sandbox.community_with_admin()
        await connect_server(sandbox, receiver, community, admin.token)
        publish_date = int(time.time()) + 1
        scheduled = await post(sandbox, community, admin, "soon", publish_date=publish_date,
                               attachments="photo-1_7")
        await receiver.wait_for(lambda r: bool(r.events("wall_schedule_post_new")))
        scheduled_event = receiver.events("wall_schedule_post_new")[0].payload["object"]
        assert scheduled_event["id"] == scheduled
        assert scheduled_event["post_type"] == "postpone"
        assert scheduled_event["date"] == publish_date

        await receiver.wait_for(lambda r: bool(r.events("wall_post_new")), timeout=4.0,
                                what="the scheduled post going live")
        assert time.time() >= publish_date
        live = receiver.events("wall_post_new")[0].payload["object"]
        assert live["postponed_id"] == scheduled and live["id"] != scheduled
        assert live["post_type"] == "post" and live["text"] == "soon"
        assert live["date"] == publish_date and live["attachments"][0]["photo"]["id"] == 7

        wall = await sandbox.control.wall(community.group_id)
        assert wall["postponed"] == []
        assert [item["id"] for item in wall["published"]] == [live["id"]]
        item = (await wall_get(sandbox, community, admin))["items"][0]
        assert item["postponed_id"] == scheduled

    async def test_deleting_scheduled_post(
            self, sandbox: RunningSandbox, receiver: CallbackReceiver) -> None:
        """Deleting a postponed post fires wall_schedule_post_delete and it never goes live."""
        community, admin = await sandbox.community_with_admin()
        await connect_server(sandbox, receiver, community, admin.token)
        scheduled = await post(sandbox, community, admin, "never",
                               publish_date=int(time.time()) + 3600)
        await sandbox.api("wall.delete", admin.token, owner_id=-community.group_id,
                          post_id=scheduled)
        await receiver.wait_for(lambda r: bool(r.events("wall_schedule_post_delete")))
        deleted = receiver.events("wall_schedule_post_delete")[0].payload["object"]
        assert deleted["id"] == scheduled and deleted["owner_id"] == -community.group_id
        assert (await sandbox.control.wall(community.group_id))["postponed"] == []
