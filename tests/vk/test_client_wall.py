"""The typed wall helpers against the VK sandbox."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.vk.client import VkClient
from shared.vk.models import WallFilter
from tests.support.communities import Community
from tools.vk_sandbox.control import SandboxControl


async def add_posts(sandbox: SandboxControl, group_id: int, count: int) -> None:
    for number in range(count):
        await sandbox.create_post(group_id, f"post {number}")


class TestWallGet:
    async def test_a_page_is_typed(self, sandbox: SandboxControl, vk: VkClient,
                                   community: Community) -> None:
        """Posts come back newest first as WallPost, with UTC dates and attachment ids."""
        await sandbox.create_post(community.group_id, "first")
        await sandbox.create_post(community.group_id, "second", attachments=["photo-1_2"])

        page = await vk.wall_get(community.token, community.owner_id, count=1)

        assert page.count == 2
        [post] = page.items
        assert (post.text, post.owner_id, post.attachments) == (
            "second", community.owner_id, ("photo-1_2",))
        assert post.date.tzinfo is UTC

    async def test_postponed_filter(self, sandbox: SandboxControl, vk: VkClient,
                                    community: Community) -> None:
        """The postponed filter shows scheduled posts only."""
        later = int((datetime.now(UTC) + timedelta(hours=1)).timestamp())
        await sandbox.create_post(community.group_id, "now")
        await sandbox.create_post(community.group_id, "later", publish_date=later)

        page = await vk.wall_get(community.token, community.owner_id, WallFilter.POSTPONED)

        assert [(post.text, post.post_type) for post in page.items] == [("later", "postpone")]

    @pytest.mark.parametrize(("offset", "count"), [(0, 0), (0, 101), (-1, 10)])
    async def test_page_bounds_are_checked_before_calling(self, sandbox: SandboxControl,
                                                          vk: VkClient, community: Community,
                                                          offset: int, count: int) -> None:
        """count outside 1..100 or a negative offset is a caller bug: no request is made."""
        with pytest.raises(ValueError):
            await vk.wall_get(community.token, community.owner_id, WallFilter.ALL,
                              offset, count)
        assert await sandbox.calls("wall.get") == []


class TestWallGetAll:
    async def test_pages_until_the_wall_is_read(self, sandbox: SandboxControl, vk: VkClient,
                                                community: Community) -> None:
        """230 posts: three pages of 100, 100 and 30, every post once, newest first."""
        await add_posts(sandbox, community.group_id, 230)

        posts = await vk.wall_get_all(community.token, community.owner_id)

        assert len(posts) == 230
        assert len({post.id for post in posts}) == 230
        assert posts[0].text == "post 229"
        calls = await sandbox.calls("wall.get")
        assert [(call["params"]["offset"], call["params"]["count"]) for call in calls] == [
            ("0", "100"), ("100", "100"), ("200", "100")]

    async def test_stops_at_the_limit(self, sandbox: SandboxControl, vk: VkClient,
                                      community: Community) -> None:
        """With limit=150 only the newest 150 are fetched: a page of 100, then one of 50."""
        await add_posts(sandbox, community.group_id, 230)

        posts = await vk.wall_get_all(community.token, community.owner_id, limit=150)

        assert [post.text for post in posts[:2]] == ["post 229", "post 228"]
        assert len(posts) == 150
        calls = await sandbox.calls("wall.get")
        assert [call["params"]["count"] for call in calls] == ["100", "50"]

    async def test_empty_wall(self, vk: VkClient, community: Community) -> None:
        """An empty wall is one request and no posts."""
        assert await vk.wall_get_all(community.token, community.owner_id) == []


class TestWallGetById:
    async def test_found_posts_are_returned_missing_ones_left_out(
            self, sandbox: SandboxControl, vk: VkClient, community: Community) -> None:
        """Posts are named (owner_id, post_id); VK omits those it cannot find."""
        await add_posts(sandbox, community.group_id, 3)

        posts = await vk.wall_get_by_id(community.token, [
            (community.owner_id, 1), (community.owner_id, 3), (community.owner_id, 99)])

        assert sorted(post.id for post in posts) == [1, 3]
        [call] = await sandbox.calls("wall.getById")
        assert call["params"]["posts"] == f"{community.owner_id}_1,{community.owner_id}_3," \
                                          f"{community.owner_id}_99"


class TestWallPostAndDelete:
    async def test_scheduled_post_as_the_community(self, sandbox: SandboxControl, vk: VkClient,
                                                   community: Community) -> None:
        """wall.post goes to -group_id from the group, with attachments and a publish date."""
        publish_at = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2)

        post_id = await vk.wall_post(community.token, community.group_id, "Привет",
                                     ["photo-1_2", "photo-1_3"], publish_date=publish_at)

        [post] = (await sandbox.wall(community.group_id))["postponed"]
        assert post["id"] == post_id
        assert (post["owner_id"], post["from_id"]) == (community.owner_id, community.owner_id)
        assert (post["text"], post["date"]) == ("Привет", int(publish_at.timestamp()))
        [call] = await sandbox.calls("wall.post")
        assert call["params"]["attachments"] == "photo-1_2,photo-1_3"
        assert call["params"]["from_group"] == "1"

    async def test_naive_publish_date_is_refused(self, sandbox: SandboxControl, vk: VkClient,
                                                 community: Community) -> None:
        """A publish date without a timezone would be guessed; it is refused instead."""
        with pytest.raises(ValueError, match="timezone"):
            await vk.wall_post(community.token, community.group_id, "x",
                               publish_date=datetime(2030, 1, 1))
        assert await sandbox.calls("wall.post") == []

    async def test_delete(self, sandbox: SandboxControl, vk: VkClient,
                          community: Community) -> None:
        """A deleted post is gone from the wall."""
        post_id = await vk.wall_post(community.token, community.group_id, "short-lived")

        await vk.wall_delete(community.token, community.group_id, post_id)

        assert (await sandbox.wall(community.group_id))["published"] == []

    @pytest.mark.parametrize("group_id", [0, -5])
    async def test_group_ids_are_positive(self, vk: VkClient, group_id: int) -> None:
        """Passing an owner id (negative) where a group id belongs is caught early."""
        with pytest.raises(ValueError):
            await vk.wall_post("vk1.a.any-token-0123456789", group_id, "x")
