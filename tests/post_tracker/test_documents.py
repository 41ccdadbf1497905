"""Malformed and legacy documents against a running tracker: each ends in its documented
state, and a quiet tracker then costs MongoDB a bounded number of operations (no busy loop).

Documented states (README, "MongoDB data contract"; ``shared/documents.py``):

* readable as the contract means it (integral doubles, int64, ObjectId ids, VK's comma
  string of attachments, no ``text``) → published and verified (deleted);
* not usable (null/missing ids, a date that is not a date, wrong types) → ``error``
  naming the field and the type found, nothing sent; a ``publishing`` post that cannot
  be read → ``possible_error`` saying so;
* a status that is not the tracker's → left exactly as it is.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from bson import Int64, ObjectId
from pymongo.asynchronous.database import AsyncDatabase

from shared.broker import Broker
from shared.mongo import PROJECTS, SYSTEM_POSTS, Document
from shared.settings import Settings
from tests.support.communities import Community, new_community
from tests.support.sandbox import RunningSandbox
from tests.support.tracker import UpdatesInbox, fast_options, now, published, running_trackers
from tests.support.waiting import eventually

QUIET_SECONDS = 10.0
INTERVAL_SECONDS = 1.0
# MongoDB operations one scheduling cycle may cost when nothing is due (a handful of
# reads and the change stream's getMore), with room to spare; a busy loop costs
# thousands a second.
OPS_PER_CYCLE = 25

Check = Callable[[Document | None], bool]


@dataclass(frozen=True)
class Case:
    name: str
    document: Callable[[Community], Document]  # fields over a valid due post
    expect: str  # "verified", "error: <text>", "possible_error: <text>", "unchanged"


def due(community: Community, **fields: Any) -> Document:
    return {"project_id": community.project_id, "text": "ok", "attachments": [],
            "publication_date": now() - timedelta(seconds=1),
            "status": "pending_publication", "vk_post_id": None, "error": None, **fields}


def without(document: Document, *fields: str) -> Document:
    return {key: value for key, value in document.items() if key not in fields}


CASES = [
    Case("attachments as VK's comma string",
         lambda c: due(c, text="comma", attachments="photo-1_2,photo-1_3"), "verified"),
    Case("no text field, a photo", lambda c: without(due(c, attachments=["photo-1_4"]), "text"),
         "verified"),
    Case("null attachments", lambda c: due(c, text="null attachments", attachments=None),
         "verified"),
    Case("project_id null", lambda c: due(c, project_id=None),
         "error: project_id: expected an id, got null"),
    Case("project_id missing", lambda c: without(due(c), "project_id"),
         "error: project_id: missing"),
    Case("project_id an array", lambda c: due(c, project_id=[c.project_id]),
         "error: project_id: expected an id, got array"),
    Case("project_id a fraction", lambda c: due(c, project_id=5.5),
         "error: project_id: expected an id, got double"),
    Case("project_id an int of no project", lambda c: due(c, project_id=424242),
         "error: project not found"),
    Case("project_id an ObjectId of no project", lambda c: due(c, project_id=ObjectId()),
         "error: project not found"),
    Case("publication_date an ISO string",
         lambda c: due(c, publication_date="2025-01-01T10:00:00Z"),
         "error: publication_date: expected a date, got string"),
    Case("publication_date a number", lambda c: due(c, publication_date=1735725600),
         "error: publication_date: expected a date, got int"),
    Case("publication_date missing", lambda c: without(due(c), "publication_date"),
         "error: publication_date: missing"),
    Case("text a number", lambda c: due(c, text=42), "error: text: expected a string, got int"),
    Case("attachments of numbers", lambda c: due(c, attachments=[1, 2]),
         "error: attachments: expected VK attachment ids (strings), found int in the list, "
         "got array"),
    Case("attachments an object", lambda c: due(c, attachments={"photo": 1}),
         "error: attachments: expected a list of VK attachment ids or a comma string, "
         "got object"),
    Case("vk_post_id a string on a pending post", lambda c: due(c, vk_post_id="abc"),
         "error: vk_post_id: expected an integer, got string"),
    Case("status unknown", lambda c: due(c, status="draft"), "unchanged"),
    Case("status in capitals", lambda c: due(c, status="PENDING_PUBLICATION"), "unchanged"),
    Case("status a number", lambda c: due(c, status=1), "unchanged"),
    Case("publishing, claimed_at a string",
         lambda c: due(c, status="publishing", claimed_at="yesterday", sent_text="x"),
         "possible_error: not verified: claimed_at: expected a date, got string"),
]


def settled(expect: str) -> Check:
    if expect == "verified":
        return lambda document: document is None
    if expect == "unchanged":
        return lambda document: document is not None
    status, _, error = expect.partition(": ")
    return lambda document: (document is not None and document.get("status") == status
                             and document.get("error") == error)


async def opcounters(db: AsyncDatabase[Document]) -> int:
    status = await db.client.admin.command("serverStatus")
    return sum(int(value) for value in status["opcounters"].values())


class TestMalformedDocuments:
    async def test_each_ends_in_its_documented_state_and_the_tracker_goes_quiet(
            self, db: AsyncDatabase[Document], broker: Broker, tracker_settings: Settings,
            vk_sandbox: RunningSandbox, inbox: UpdatesInbox) -> None:
        """The matrix of malformed documents, all due at once with valid posts of the
        same project: each ends as documented, the valid ones are published; then 10 quiet
        seconds cost MongoDB a bounded number of operations."""
        community = await new_community(db, vk_sandbox)
        inserted = []
        for case in CASES:
            result = await db[SYSTEM_POSTS].insert_one(case.document(community))
            inserted.append((case, result.inserted_id))
        originals = {post_id: await db[SYSTEM_POSTS].find_one({"_id": post_id})
                     for case, post_id in inserted if case.expect == "unchanged"}
        async with running_trackers(db, tracker_settings, broker,
                                    fast_options(interval_seconds=INTERVAL_SECONDS)):
            for case, post_id in inserted:
                check = settled(case.expect)

                async def probe(post_id: Any = post_id, check: Check = check) -> bool:
                    return check(await db[SYSTEM_POSTS].find_one({"_id": post_id}))

                await eventually(probe, timeout=15, what=f"{case.name}: {case.expect}")
            await asyncio.sleep(INTERVAL_SECONDS)  # let the last run's look end
            before = await opcounters(db)
            await asyncio.sleep(QUIET_SECONDS)
            operations = await opcounters(db) - before
        for post_id, original in originals.items():
            assert await db[SYSTEM_POSTS].find_one({"_id": post_id}) == original
        # Every error of the community's project was announced to it, once.
        announced = Counter(message.correlation_id
                            for message in inbox.for_project(community.project_id))
        for case, post_id in inserted:
            document = case.document(community)
            if case.expect.startswith("error") and document.get("project_id") == \
                    community.project_id:
                assert announced[str(post_id)] == 1, case.name
        texts = sorted(post["text"] for post in await published(vk_sandbox, community.group_id))
        assert texts == ["", "comma", "null attachments"]
        bound = OPS_PER_CYCLE * QUIET_SECONDS / INTERVAL_SECONDS
        assert operations <= bound, f"{operations} MongoDB operations in {QUIET_SECONDS} s"


class TestLegacyProjects:
    async def test_numbers_and_ids_of_other_bson_types_are_read_as_meant(
            self, db: AsyncDatabase[Document], broker: Broker, tracker_settings: Settings,
            vk_sandbox: RunningSandbox, inbox: UpdatesInbox) -> None:
        """vk_group_id as a double or an int64, an ObjectId project id (and the posts'
        project_id the same ObjectId): published and verified; a vk_post_id stored as a
        double is verified by id (way 1)."""
        double = await new_community(db, vk_sandbox)
        await db[PROJECTS].update_one({"_id": double.project_id},
                                      {"$set": {"vk_group_id": float(double.group_id)}})
        long = await new_community(db, vk_sandbox)
        await db[PROJECTS].update_one({"_id": long.project_id},
                                      {"$set": {"vk_group_id": Int64(long.group_id)}})
        objectid = await new_community(db, vk_sandbox)
        project = await db[PROJECTS].find_one_and_delete({"_id": objectid.project_id})
        assert project is not None
        oid = ObjectId()
        await db[PROJECTS].insert_one({**project, "_id": oid})
        wall_post = await vk_sandbox.control.create_post(double.group_id, "made earlier")
        claimed = now() - timedelta(seconds=1)
        posts = [
            due(double, text="double group id"), due(long, text="int64 group id"),
            {**due(objectid, text="objectid project"), "project_id": oid},
            due(double, text="made earlier", status="publishing", sent_text="made earlier",
                claimed_by="gone", claimed_at=claimed, vk_post_id=float(wall_post["id"])),
        ]
        ids = (await db[SYSTEM_POSTS].insert_many(posts)).inserted_ids
        async with running_trackers(db, tracker_settings, broker, fast_options()):
            await eventually(lambda: _none_left(db, ids), what="every post verified")
        for community, text in ((double, "double group id"), (long, "int64 group id"),
                                (objectid, "objectid project")):
            assert text in [post["text"] for post in await published(vk_sandbox,
                                                                      community.group_id)]
        assert len(await vk_sandbox.control.calls("wall.post")) == 3


def _none_left(db: AsyncDatabase[Document], ids: list[Any]) -> Awaitable[bool]:
    async def probe() -> bool:
        return await db[SYSTEM_POSTS].count_documents({"_id": {"$in": ids}}) == 0
    return probe()
