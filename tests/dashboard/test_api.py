"""The dashboard's JSON API and its system-post journal, without a browser."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from bson import ObjectId
from pydantic import HttpUrl, SecretStr
from pymongo.asynchronous.database import AsyncDatabase

from services.update_notifier.app import init_app
from services.update_notifier.dashboard.journal import PostJournal
from services.update_notifier.update_log import UpdateLog
from shared.messages import ProjectUpdated
from shared.mongo import PROCESSED_EVENTS, SYSTEM_POSTS, ContentType, Document
from shared.settings import Settings
from tests.support.documents import insert_project

Client = TestClient[web.Request, web.Application]
TOKEN = "notifier-token-123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SECRETS = ("user-token-SECRET", "callback-SECRET", "confirm-SECRET")


@pytest.fixture
async def start_app(settings: Settings, db: AsyncDatabase[Document]
                    ) -> AsyncIterator[Callable[..., Awaitable[Client]]]:
    clients: list[Client] = []

    async def start(**overrides: Any) -> Client:
        app = init_app(settings.model_copy(update=overrides))
        client: Client = TestClient(TestServer(app, host="127.0.0.1"))
        await client.start_server()
        clients.append(client)
        return client

    yield start
    for client in clients:
        await client.close()


async def seed(db: AsyncDatabase[Document]) -> str:
    project_id = await insert_project(db, group_id=77, token=SECRETS[0], secret=SECRETS[1],
                                      confirmation_code=SECRETS[2], name="Seeded")
    now = datetime.now(UTC)
    for content, count in ((ContentType.SCHEDULED, 2), (ContentType.PUBLISHED, 1)):
        await db[content.collection].insert_many([
            {"project_id": project_id, "vk_post_id": n, "text": "t", "date": now} for n in range(count)])
    await db[ContentType.SCHEDULED.collection].insert_one(
        {"project_id": "someone-else", "vk_post_id": 1, "text": "t", "date": now})
    await db[SYSTEM_POSTS].insert_many([
        {"project_id": project_id, "text": "later", "attachments": [], "status": "pending_publication",
         "publication_date": now + timedelta(hours=2), "vk_post_id": None, "error": None},
        {"project_id": project_id, "text": "sooner", "attachments": [], "status": "pending_publication",
         "publication_date": now + timedelta(hours=1), "vk_post_id": None, "error": None},
        {"project_id": project_id, "text": "broken", "attachments": [], "status": "error",
         "publication_date": now - timedelta(hours=1), "vk_post_id": None,
         "error": "VK error 15: access denied"},
    ])
    return project_id


class TestProjects:
    async def test_token_required_and_secrets_never_served(
        self, start_app: Callable[..., Awaitable[Client]], db: AsyncDatabase[Document]
    ) -> None:
        project_id = await seed(db)
        client = await start_app(notifier_token=SecretStr(TOKEN))
        for path in ("/api/dashboard/projects", f"/api/dashboard/projects/{project_id}",
                     "/api/dashboard/timeline"):
            assert (await client.get(path)).status == 401
            assert (await client.get(path, headers={"Authorization": "Bearer wrong"})).status == 401
            response = await client.get(path, headers=AUTH)
            assert response.status == 200, await response.text()
            text = await response.text()
            assert not [secret for secret in SECRETS if secret in text]
        page = await client.get("/")  # the page itself holds no data
        assert page.status == 200 and page.content_type == "text/html"
        assert "script-src 'self'" in page.headers["Content-Security-Policy"]
        assert page.headers["Referrer-Policy"] == "no-referrer"
        for asset in ("dashboard.js", "dashboard.css", "favicon.svg"):
            assert (await client.get(f"/dashboard/{asset}")).status == 200

    async def test_counts_system_posts_and_last_update(
        self, start_app: Callable[..., Awaitable[Client]], db: AsyncDatabase[Document]
    ) -> None:
        project_id = await seed(db)
        update_log = UpdateLog(db)
        await update_log.prepare()
        await update_log.append(ProjectUpdated(project_id=project_id, reason="refresh",
                                               content_types=(ContentType.SCHEDULED,)))
        client = await start_app()
        answer = await (await client.get("/api/dashboard/projects")).json()
        [project] = answer["projects"]
        assert answer["cursor"] == "v1.1" and answer["sandbox"] is False
        assert project["counts"] == {"scheduled": 2, "published": 1, "suggested": 0}
        assert project["systemPosts"]["counts"] == {
            "pending_publication": 2, "publishing": 0, "error": 1, "possible_error": 0}
        assert [p["text"] for p in project["systemPosts"]["posts"]] == ["broken", "sooner", "later"]
        assert project["systemPosts"]["posts"][0]["error"] == "VK error 15: access denied"
        assert project["lastUpdate"]["seq"] == 1
        assert (project["name"], project["vkGroupId"]) == ("Seeded", 77)
        one = await (await client.get(f"/api/dashboard/projects/{project_id}")).json()
        assert one["project"] == project
        assert (await client.get("/api/dashboard/projects/nope")).status == 404


    async def test_last_reconciled_and_a_resting_token_are_shown_without_its_fingerprint(
        self, start_app: Callable[..., Awaitable[Client]], db: AsyncDatabase[Document]
    ) -> None:
        """The refresher's ``reconciled_at`` and ``vk_token_rest`` reach the page; the
        token's fingerprint is never read."""
        at = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
        project_id = await seed(db)
        fresh_id = await insert_project(db, group_id=78)
        await db["projects"].update_one({"_id": project_id}, {"$set": {
            "reconciled_at": at,
            "vk_token_rest": {"fingerprint": "f1ngerprint", "code": 5, "error": "VK error 5",
                              "since": at, "probe_at": at + timedelta(minutes=1)},
            "refresh_status.published": {"ok": False, "error": "VK error 5", "at": at,
                                         "token_resting": True}}})
        client = await start_app()
        answer = await (await client.get("/api/dashboard/projects")).json()
        projects = {project["id"]: project for project in answer["projects"]}
        project = projects[project_id]
        assert project["lastReconciledAt"] == "2026-12-01T10:00:00.000Z"
        assert project["tokenRest"] == {"code": 5, "error": "VK error 5",
                                        "since": "2026-12-01T10:00:00.000Z",
                                        "probeAt": "2026-12-01T10:01:00.000Z"}
        assert project["refreshStatus"]["published"]["tokenResting"] is True
        assert "f1ngerprint" not in await (await client.get("/api/dashboard/projects")).text()
        assert (projects[fresh_id]["lastReconciledAt"], projects[fresh_id]["tokenRest"]) == (
            None, None)


class TestTimeline:
    async def test_refresh_entry_steps_and_after(
        self, start_app: Callable[..., Awaitable[Client]], db: AsyncDatabase[Document]
    ) -> None:
        project_id = await seed(db)
        update_log = UpdateLog(db)
        await update_log.prepare()
        taken = datetime.now(UTC) - timedelta(seconds=1)
        await db[PROCESSED_EVENTS].insert_one({"_id": "77:e1", "claimed_by": "corr-1", "seen_at": taken})
        for reason, correlation_id in (("refresh", "corr-1"), ("refresh_failed", "corr-2")):
            await update_log.append(ProjectUpdated(
                project_id=project_id, reason=reason, correlation_id=correlation_id,
                content_types=(ContentType.PUBLISHED,)))
        client = await start_app()
        answer = await (await client.get("/api/dashboard/timeline")).json()
        first, second = answer["entries"]
        assert (first["seq"], first["reason"], first["announced"]) == (1, "refresh", "refresh done")
        assert [s["step"] for s in first["steps"]] == ["callback taken", "refresh done", "recorded"]
        assert first["projectName"] == "Seeded" and first["contentTypes"] == ["published"]
        assert [s["step"] for s in second["steps"]] == ["refresh failed", "recorded"]
        later = await (await client.get("/api/dashboard/timeline?after=v1.1&limit=5")).json()
        assert [e["seq"] for e in later["entries"]] == [2]
        for bad in ("?after=nope", "?limit=0", "?limit=x"):
            assert (await client.get(f"/api/dashboard/timeline{bad}")).status == 400


class TestSandboxMode:
    async def test_off_without_the_variable(
        self, start_app: Callable[..., Awaitable[Client]], db: AsyncDatabase[Document],
    ) -> None:
        project_id = await seed(db)
        client = await start_app(dashboard_sandbox_url=None)
        for path in ("/api/dashboard/sandbox/scheduled-post", "/api/dashboard/sandbox/system-post"):
            assert (await client.post(path, json={"project_id": project_id})).status == 404

    async def test_system_post_due_soon(
        self, start_app: Callable[..., Awaitable[Client]], db: AsyncDatabase[Document],
    ) -> None:
        project_id = await seed(db)
        client = await start_app(notifier_token=SecretStr(TOKEN),
                                 dashboard_sandbox_url=HttpUrl("http://127.0.0.1:9"))  # not called
        path = "/api/dashboard/sandbox/system-post"
        assert (await client.post(path, json={"project_id": project_id})).status == 401
        response = await client.post(path, json={"project_id": project_id}, headers=AUTH)
        assert response.status == 200, await response.text()
        post = (await response.json())["post"]
        document = await db[SYSTEM_POSTS].find_one({"_id": ObjectId(post["id"])})
        assert document is not None and document["status"] == "pending_publication"
        delay = (document["publication_date"] - datetime.now(UTC)).total_seconds()
        assert 8 < delay <= 10
        for body in ({"project_id": "nope"}, {"project_id": project_id, "delay_seconds": -1}, {}):
            answer = await client.post(path, json=body, headers=AUTH)
            assert answer.status in {400, 404}, body
        scheduled = await client.post("/api/dashboard/sandbox/scheduled-post",
                                      json={"project_id": project_id}, headers=AUTH)
        assert scheduled.status == 502  # nothing listens on port 9: a clear one-line error
        assert "sandbox" in (await scheduled.json())["error"]


def change(operation: str, post_id: str, at: datetime, **rest: Any) -> dict[str, Any]:
    return {"operationType": operation, "documentKey": {"_id": post_id}, "wallTime": at, **rest}


class TestJournal:
    def test_steps_of_a_post_and_what_each_announcement_reported(self) -> None:
        journal = PostJournal()
        t0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
        ms = timedelta(milliseconds=1)
        journal.apply_change(change("insert", "p1", t0, fullDocument={
            "_id": "p1", "project_id": "a", "text": "hi", "status": "pending_publication",
            "publication_date": t0 + 10_000 * ms}))
        journal.apply_change(change("update", "p1", t0 + 10_002 * ms, updateDescription={
            "updatedFields": {"status": "publishing", "claimed_at": t0 + 10_001 * ms,
                              "correlation_id": "c1"}}))
        journal.apply_change(change("update", "p1", t0 + 10_040 * ms, updateDescription={
            "updatedFields": {"vk_post_id": 5, "published_at": t0 + 10_040 * ms}}))
        journal.apply_change(change("delete", "p1", t0 + 10_060 * ms))
        trace = journal.trace_for("c1")
        assert trace is not None and trace is journal.trace_for("p1")
        assert [s.name for s in trace.steps] == ["created", "claimed", "published", "verified"]
        published = trace.announced_step(t0 + 10_041 * ms)
        verified = trace.announced_step(t0 + 10_062 * ms)
        assert (published and published.name, verified and verified.name) == ("published", "verified")
        assert [s.name for s in trace.path_to(published, t0)] == ["created", "due", "claimed",
                                                                  "published"]

    def test_deleting_a_pending_post_is_not_a_verification(self) -> None:
        journal = PostJournal(capacity=2)
        t0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
        for key in ("p1", "p2", "p3"):
            journal.apply_document({"_id": key, "project_id": "a", "status": "pending_publication",
                                    "publication_date": t0})
        assert len(journal) == 2 and journal.trace_for("p1") is None  # oldest evicted
        journal.apply_change(change("update", "p3", t0, updateDescription={"updatedFields": {
            "status": "error", "error": "VK error 15", "failed_at": t0}}))
        journal.apply_change(change("delete", "p2", t0))
        p2, p3 = journal.trace_for("p2"), journal.trace_for("p3")
        assert p2 is not None and [s.name for s in p2.steps] == ["deleted"]
        assert p3 is not None and [(s.name, s.detail) for s in p3.steps] == [("error", "VK error 15")]
