from __future__ import annotations

import secrets
from datetime import UTC, datetime

import pytest
from bson import ObjectId
from pymongo.asynchronous.database import AsyncDatabase
from structlog.testing import capture_logs

from services.callback_gateway.addressing import ProjectKeys
from services.callback_gateway.projects import (
    KEY_CHANGES,
    RECHECKS_PER_WINDOW,
    ProjectDirectory,
    project_keys,
)
from shared.change_wakeup import ChangeWakeup
from shared.mongo import PROJECTS, Document
from tests.support.background import in_background
from tests.support.documents import insert_project
from tests.support.manual_clock import ManualClock
from tests.support.waiting import eventually

GROUP = 31
TTL = 5.0


def cache_clock() -> ManualClock:
    """The caches' timer, moved by the test (not at 0: a cache may read 0 as "never")."""
    return ManualClock(now=1000.0)


async def mongo_queries(db: AsyncDatabase[Document]) -> int:
    """Queries the server has answered so far (``serverStatus().opcounters.query``)."""
    status = await db.client.admin.command("serverStatus")
    return int(status["opcounters"]["query"])


def directory(db: AsyncDatabase[Document], clock: ManualClock) -> ProjectDirectory:
    return ProjectDirectory(db[PROJECTS], TTL, TTL, timer=clock)


async def known_community(db: AsyncDatabase[Document]) -> tuple[ProjectDirectory, ManualClock, int]:
    """A directory that has found the community's one project (secret ``real``), its
    clock, and the server's query count after that."""
    await insert_project(db, group_id=GROUP, secret="real")
    projects = directory(db, clock := cache_clock())
    await projects.lookup(GROUP, "real")
    return projects, clock, await mongo_queries(db)


class TestProjectDirectory:
    async def test_all_projects_of_a_community_are_found_in_one_read(
        self, db: AsyncDatabase[Document]
    ) -> None:
        """A shared community: every project, in id order, and the secret picks its own."""
        await insert_project(db, group_id=GROUP, secret="s-b", _id="b")
        await insert_project(db, group_id=GROUP, secret="s-a", _id="a")
        await insert_project(db, group_id=GROUP + 1, secret="s-a", _id="other")
        projects = directory(db, cache_clock())
        before = await mongo_queries(db)
        lookup = await projects.lookup(GROUP, "s-b")
        assert [p.project_id for p in lookup.projects] == ["a", "b"]
        assert [p.project_id for p in lookup.addressed] == ["b"]
        assert lookup.read_now
        again = await projects.lookup(GROUP, "s-a")
        assert [p.project_id for p in again.addressed] == ["a"] and not again.read_now
        assert await mongo_queries(db) - before == 1

    async def test_a_refused_secret_is_refused_again_from_memory(
        self, db: AsyncDatabase[Document]
    ) -> None:
        """The same wrong secret costs one re-check per window, however often it comes."""
        projects, clock, before = await known_community(db)
        for _ in range(100):
            assert (await projects.lookup(GROUP, "forged")).addressed == ()
        assert await mongo_queries(db) - before == 1
        clock.now += TTL  # both caches expire: the next window re-reads once more
        for _ in range(100):
            assert (await projects.lookup(GROUP, "forged")).addressed == ()
        assert await mongo_queries(db) - before == 2

    async def test_new_forged_secrets_cost_a_few_reads_per_window(
        self, db: AsyncDatabase[Document]
    ) -> None:
        """Random secrets, each new: at most ``RECHECKS_PER_WINDOW`` reads per window."""
        projects, clock, before = await known_community(db)
        for _ in range(200):
            lookup = await projects.lookup(GROUP, secrets.token_urlsafe(16))
            assert lookup.addressed == () and lookup.projects
        assert await mongo_queries(db) - before == RECHECKS_PER_WINDOW
        clock.now += TTL - 0.1  # the window has not ended: still from memory
        await projects.lookup(GROUP, secrets.token_urlsafe(16))
        assert await mongo_queries(db) - before == RECHECKS_PER_WINDOW
        assert (await projects.lookup(GROUP, "real")).addressed  # the real one still works

    async def test_a_rotated_secret_works_at_once_even_after_a_refusal(
        self, db: AsyncDatabase[Document]
    ) -> None:
        """A forged secret refused a moment before the rotation does not hold up the new
        secret (a secret not refused before gets a re-check); then the old one is refused."""
        project_id = await insert_project(db, group_id=GROUP, secret="old")
        projects = directory(db, cache_clock())
        assert (await projects.lookup(GROUP, "old")).addressed
        assert (await projects.lookup(GROUP, "forged")).addressed == ()
        await db[PROJECTS].update_one({"_id": project_id}, {"$set": {"vk_callback_secret": "new"}})
        assert [p.project_id for p in (await projects.lookup(GROUP, "new")).addressed] == [
            project_id]
        assert (await projects.lookup(GROUP, "old")).addressed == ()

    async def test_a_project_added_to_a_known_community_is_found_by_its_secret(
        self, db: AsyncDatabase[Document]
    ) -> None:
        """A second team's project on a cached community: its first callback (its own
        server's secret) is re-checked and goes to it."""
        await insert_project(db, group_id=GROUP, secret="first", _id="first")
        projects = directory(db, cache_clock())
        await projects.lookup(GROUP, "first")
        await insert_project(db, group_id=GROUP, secret="second", _id="second")
        lookup = await projects.lookup(GROUP, "second")
        assert [p.project_id for p in lookup.addressed] == ["second"] and lookup.read_now

    async def test_unknown_communities_are_not_cached(self, db: AsyncDatabase[Document]) -> None:
        """A miss asks MongoDB every time, so a project created a moment ago is found."""
        projects = directory(db, cache_clock())
        assert (await projects.lookup(GROUP, None)).projects == ()
        await insert_project(db, group_id=GROUP)
        assert [p.project_id for p in (await projects.lookup(GROUP, None)).addressed]


class TestForgettingOnChanges:
    async def test_a_secret_stored_during_a_flood_works_at_once(
        self, db: AsyncDatabase[Document]
    ) -> None:
        """Forged callbacks have used up the community's re-checks and the clock stands
        still (the window never ends), yet a secret stored in MongoDB is accepted as soon
        as the change stream reports it; the refresher's status writes forget nothing."""
        project_id = await insert_project(db, group_id=GROUP, secret="old")
        projects = directory(db, cache_clock())
        forgotten: list[int] = []

        def forget() -> None:
            forgotten.append(0)
            projects.forget()

        wakeup = ChangeWakeup(db[PROJECTS], forget, poll_seconds=60, retry_seconds=60,
                              pipeline=KEY_CHANGES)
        async with in_background(wakeup.run()):
            await eventually(lambda: wakeup.watching, what="the stream")
            for _ in range(20):
                await projects.lookup(GROUP, secrets.token_urlsafe(16))
            opened = len(forgotten)
            await db[PROJECTS].update_one({"_id": project_id}, {"$set": {
                "refresh_status.scheduled": {"ok": True, "error": None, "at": datetime.now(UTC)}}})
            await db[PROJECTS].update_one({"_id": project_id},
                                          {"$set": {"vk_callback_secret": "new"}})

            async def accepted() -> bool:
                return bool((await projects.lookup(GROUP, "new")).addressed)

            await eventually(accepted, what="the new secret accepted")
            assert len(forgotten) == opened + 1  # the secret's change, not the status write
            assert (await projects.lookup(GROUP, "old")).addressed == ()


class TestProjectKeys:
    @pytest.mark.parametrize(("document", "expected"), [
        ({"_id": "p", "vk_confirmation_code": "c", "vk_callback_secret": "s"},
         ProjectKeys("p", "c", "s")),
        ({"_id": "p"}, ProjectKeys("p", "", None)),  # neither code nor secret
        ({"_id": "p", "vk_confirmation_code": None, "vk_callback_secret": ""},
         ProjectKeys("p", "", None)),  # null and empty: none
        ({"_id": ObjectId("65f000000000000000000001"), "vk_callback_secret": "s"},
         ProjectKeys("65f000000000000000000001", "", "s")),  # the id as messages carry it
        ({"_id": 7.0, "vk_callback_secret": "s"}, ProjectKeys("7", "", "s")),  # integral double
    ])
    def test_keys_are_read_through_the_shared_project_model(
            self, document: Document, expected: ProjectKeys) -> None:
        """The gateway reads ``projects`` as every service does (shared/documents.py)."""
        assert project_keys(document) == expected

    def test_an_unusable_project_is_skipped_and_logged_without_its_secret(self) -> None:
        """A secret that is not a string: not a project the gateway can address."""
        with capture_logs() as logs:
            assert project_keys({"_id": "p", "vk_callback_secret": 12345}) is None
        assert [(entry["event"], entry["project_id"], entry["error"]) for entry in logs] == [
            ("project_unusable", "p", "vk_callback_secret: expected a string, got int")]
