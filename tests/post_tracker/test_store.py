"""The claim and the lease against a real mongod: atomic, fenced, expiring."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from services.post_tracker.leases import ProjectLeases
from services.post_tracker.store import PostStore
from shared.documents import PostStatus, SystemPost, count_by_status
from shared.mongo import SYSTEM_POSTS, Document
from tests.support.documents import get_post, insert_post
from tests.support.tracker import now
from tests.support.waiting import eventually


class TestClaim:
    async def test_exactly_one_of_many_racing_trackers_gets_the_post(
            self, db: AsyncDatabase[Document]) -> None:
        """20 trackers claiming one due post at once: one wins, with who, when and the text."""
        post_id = await insert_post(db, "p1", "Hi {{x}}")
        stores = [PostStore(db, f"tracker-{index}") for index in range(20)]
        candidate = await stores[0].next_candidate("p1", now())
        assert isinstance(candidate, SystemPost)
        claims = await asyncio.gather(*(store.claim(candidate, now=now(), sent_text="Hi X", guid="g")
                                        for store in stores))
        winners = [claim for claim in claims if claim is not None]
        assert len(winners) == 1
        document = await get_post(db, post_id)
        assert document is not None
        assert document["status"] == PostStatus.PUBLISHING.value
        assert document["claimed_by"] == winners[0].claimed_by
        assert (document["sent_text"], document["text"]) == ("Hi X", "Hi {{x}}")
        assert document["claimed_at"] is not None and document["correlation_id"]

    async def test_backed_off_post_waits_for_not_before(self, db: AsyncDatabase[Document]) -> None:
        """A pending post with a future not_before is not a candidate until then."""
        await insert_post(db, "p1", "later", not_before=now() + timedelta(minutes=1))
        store = PostStore(db, "t")
        assert await store.next_candidate("p1", now()) is None
        assert await store.next_candidate("p1", now() + timedelta(minutes=2)) is not None
        assert await store.due_projects(now()) == []

    async def test_oldest_due_post_comes_first(self, db: AsyncDatabase[Document]) -> None:
        """Candidates and projects are ordered by publication date, oldest first."""
        await insert_post(db, "p2", "newer", at=now() - timedelta(minutes=1))
        await insert_post(db, "p1", "newest", at=now())
        await insert_post(db, "p1", "oldest", at=now() - timedelta(minutes=5))
        store = PostStore(db, "t")
        assert await store.due_projects(now()) == ["p1", "p2"]
        candidate = await store.next_candidate("p1", now())
        assert isinstance(candidate, SystemPost) and candidate.text == "oldest"

    async def test_text_changed_since_reading_is_not_claimed(
            self, db: AsyncDatabase[Document]) -> None:
        """The claim checks the text it substituted is still the post's text."""
        post_id = await insert_post(db, "p1", "draft")
        store = PostStore(db, "t")
        candidate = await store.next_candidate("p1", now())
        assert isinstance(candidate, SystemPost)
        await db[SYSTEM_POSTS].update_one({"_id": post_id}, {"$set": {"text": "final"}})
        assert await store.claim(candidate, now=now(), sent_text="draft", guid="g") is None

    async def test_writes_after_a_lost_claim_are_dropped(
            self, db: AsyncDatabase[Document]) -> None:
        """If the post was taken back and claimed again, the first claimer's write misses."""
        post_id = await insert_post(db, "p1", "x")
        first, second = PostStore(db, "first"), PostStore(db, "second")
        candidate = await first.next_candidate("p1", now())
        assert isinstance(candidate, SystemPost)
        stale = await first.claim(candidate, now=now(), sent_text="x", guid="g")
        assert stale is not None
        await db[SYSTEM_POSTS].update_one({"_id": post_id},
                                          {"$set": {"status": PostStatus.PENDING.value}})
        again = await second.next_candidate("p1", now())
        assert isinstance(again, SystemPost) and await second.claim(again, now=now(), sent_text="x", guid="g")
        assert not await first.record_published(stale, 42, now(), attempts=1)
        document = await get_post(db, post_id)
        assert document is not None
        assert (document["claimed_by"], document["vk_post_id"]) == ("second", None)


class TestLeases:
    async def test_one_holder_at_a_time_until_it_expires(self, db: AsyncDatabase[Document]) -> None:
        """A held lease refuses others; an expired one is taken over; the old holder loses it."""
        first = ProjectLeases(db, "first", lease_seconds=0.5)
        second = ProjectLeases(db, "second", lease_seconds=0.5)
        held = await first.acquire("p1")
        assert held is not None
        assert await second.acquire("p1") is None
        taken = await eventually(lambda: second.acquire("p1"), timeout=5, interval=0.1,
                                 what="the expired lease")
        assert not await first.renew(held)
        await second.release(taken)
        assert await first.acquire("p1") is not None

    async def test_own_stale_lease_is_taken_again(self, db: AsyncDatabase[Document]) -> None:
        """A tracker's own lease left behind by a run that could not release it is taken
        again by its next run at once (new token); others still wait for it to expire."""
        first = ProjectLeases(db, "first", lease_seconds=300)
        second = ProjectLeases(db, "second", lease_seconds=300)
        stale = await first.acquire("p1")
        assert stale is not None
        again = await first.acquire("p1")
        assert again is not None and again.token != stale.token
        assert not await first.renew(stale)
        assert await first.renew(again)
        assert await second.acquire("p1") is None

    async def test_verified_at_is_shared(self, db: AsyncDatabase[Document]) -> None:
        """A look at the wall by one replica counts for the others."""
        first = ProjectLeases(db, "first", lease_seconds=5)
        second = ProjectLeases(db, "second", lease_seconds=5)
        lease = await first.acquire("p1")
        assert lease is not None
        assert await second.verified_within(["p1", "p2"], 10) == set()
        await first.mark_verified(lease)
        assert await second.verified_within(["p1", "p2"], 10) == {"p1"}


class TestOddDocuments:
    async def test_post_without_text_is_still_claimable(self, db: AsyncDatabase[Document]) -> None:
        """A photo-only post with no ``text`` field at all is claimed like any other."""
        post_id = await insert_post(db, "p1", "", attachments=["photo-1_2"])
        await db[SYSTEM_POSTS].update_one({"_id": post_id}, {"$unset": {"text": ""}})
        store = PostStore(db, "t")
        candidate = await store.next_candidate("p1", now())
        assert isinstance(candidate, SystemPost) and candidate.text == ""
        claimed = await store.claim(candidate, now=now(), sent_text="", guid="g")
        assert claimed is not None and claimed.attachments == ("photo-1_2",)


NO_POSTS = {"pending_publication": 0, "publishing": 0, "error": 0, "possible_error": 0,
            "other": 0}


class TestCountByStatus:
    @pytest.mark.parametrize(("groups", "expected"), [
        ([], NO_POSTS),
        ([("error", 2), ("possible_error", 1)], {**NO_POSTS, "error": 2, "possible_error": 1}),
        ([("pending_publication", 5), ("publishing", 1)],
         {**NO_POSTS, "pending_publication": 5, "publishing": 1}),
        ([("draft", 3), (None, 1), (7, 1), (["error"], 1), ("other", 2)], {**NO_POSTS, "other": 8}),
    ], ids=["empty", "failed", "in_flight", "foreign_values"])
    def test_every_known_status_and_other(self, groups: list[tuple[Any, int]],
                                          expected: dict[str, int]) -> None:
        """Known statuses are reported (0 when absent); anything else, of any type, is other."""
        assert count_by_status(groups) == expected

    async def test_status_groups_read_every_value(self, db: AsyncDatabase[Document]) -> None:
        """The store groups the collection by ``status`` as stored, foreign values included."""
        for status in (PostStatus.ERROR, PostStatus.ERROR, PostStatus.POSSIBLE_ERROR):
            await insert_post(db, "p1", "x", status=status)
        await db[SYSTEM_POSTS].insert_one({"project_id": "p1", "status": "draft"})
        groups = await PostStore(db, "t").status_groups()
        assert sorted(groups) == [("draft", 1), ("error", 2), ("possible_error", 1)]
