"""Reconciliation and resting tokens on the real callback path (gateway, refresher,
notifier in-process; real RabbitMQ, MongoDB and the VK sandbox)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from pymongo.asynchronous.database import AsyncDatabase
from structlog.contextvars import merge_contextvars
from structlog.testing import capture_logs

from shared.mongo import PROJECT_UPDATES, PROJECTS, ContentType, Document
from shared.settings import Settings
from shared.vk import token_fingerprint
from tests.e2e.stack import cached_ids, callback_path, connected_community, stack_settings
from tests.support.documents import insert_project
from tests.support.sandbox import RunningSandbox
from tests.support.waiting import eventually

INTERVAL = 2.0  # seconds: reconciliation's interval in these tests


def reconciling(settings: Settings, **update: object) -> Settings:
    return stack_settings(settings).model_copy(update={
        "reconcile_interval_seconds": INTERVAL, **update})


class TestReconciliation:
    async def test_a_post_deleted_without_a_callback_leaves_the_cache_within_an_interval(
        self, vk_settings: Settings, vk_sandbox: RunningSandbox, db: AsyncDatabase[Document]
    ) -> None:
        """VK sends no event when a published post is deleted; reconciliation removes it."""
        settings = reconciling(vk_settings)
        async with callback_path(settings):
            community = await connected_community(db, vk_sandbox, settings)
            post = await vk_sandbox.control.create_post(community.group_id, "Soon gone")

            async def cached() -> bool:
                return post["id"] in await cached_ids(db, community.project_id,
                                                      ContentType.PUBLISHED)

            await eventually(cached, what="the post cached")
            await vk_sandbox.control.delete_post(community.group_id, post["id"])
            assert not await vk_sandbox.control.deliveries(event_type="wall_post_delete")

            async def gone() -> bool:
                return not await cached()

            # Within one interval, plus a tick and the refresh (generous on a busy machine).
            await eventually(gone, timeout=INTERVAL + 5, what="the deleted post gone")
            project = await db[PROJECTS].find_one({"_id": community.project_id})
            assert project is not None and isinstance(project["reconciled_at"], datetime)

    async def test_a_pass_over_unchanged_walls_announces_nothing(
        self, vk_settings: Settings, vk_sandbox: RunningSandbox, db: AsyncDatabase[Document]
    ) -> None:
        """Once the caches equal VK, a pass refreshes all three (``refresh_status.at`` moves
        on) but puts nothing in the update log: the frontend's blue dot stays off. The
        log is in announcement order, so once a later change is in it, anything the
        unchanged pass announced would be too."""
        settings = reconciling(vk_settings)
        with capture_logs(processors=[merge_contextvars]) as logs:
            async with callback_path(settings, notifiers=1):
                community = await connected_community(db, vk_sandbox, settings)
                await vk_sandbox.control.create_post(community.group_id, "Already there")

                def unchanged_passes() -> set[str]:
                    """Correlation ids of reconciliation rounds that changed nothing."""
                    changed: dict[str, bool] = {}
                    for entry in logs:
                        if (entry["event"] == "refresh_done" and entry["reconcile"]
                                and entry["project_id"] == community.project_id):
                            cid = entry["correlation_id"]
                            changed[cid] = changed.get(cid, False) or entry["changed"]
                    return {cid for cid, any_change in changed.items() if not any_change}

                def quiet_content_types() -> bool:
                    """Every cache has had a reconciliation round that changed nothing."""
                    quiet = unchanged_passes()
                    return {entry["content_type"] for entry in logs
                            if entry["event"] == "refresh_done"
                            and entry.get("correlation_id") in quiet} == {
                                content.value for content in ContentType}

                await eventually(quiet_content_types,
                                 timeout=3 * INTERVAL + 5, what="unchanged passes over all")
                quiet = unchanged_passes()
                marker_at = datetime.now(UTC)
                await vk_sandbox.control.create_post(community.group_id, "A change")

                async def marker_logged() -> Document | None:
                    return await db[PROJECT_UPDATES].find_one(
                        {"project_id": community.project_id, "occurred_at": {"$gt": marker_at}})

                await eventually(marker_logged, what="the change's announcement in the log")
                logged = {entry["correlation_id"] async for entry in db[PROJECT_UPDATES].find(
                    {"project_id": community.project_id})}
        assert logged and not logged & quiet
        assert not [entry for entry in logs if entry["event"] == "project_update_announced"
                    and entry["correlation_id"] in quiet]

    async def test_200_projects_reconcile_through_execute_without_error_6(
        self, vk_settings: Settings, vk_sandbox: RunningSandbox, db: AsyncDatabase[Document]
    ) -> None:
        """200 communities of one admin (one token, 3 requests/s at VK): every cache is
        refreshed, VK never answers error 6, and the reads go in ``execute`` batches —
        far fewer requests than one per project."""
        settings = reconciling(vk_settings, reconcile_interval_seconds=5.0)
        communities = [await vk_sandbox.control.create_community() for _ in range(200)]
        admin = await vk_sandbox.control.create_user(
            admin_of=[community.group_id for community in communities])
        project_ids = [await insert_project(db, group_id=community.group_id, token=admin.token)
                       for community in communities]
        await vk_sandbox.control.clear_calls()
        async with callback_path(settings):
            async def all_ok() -> bool:
                done = await db[PROJECTS].count_documents({
                    "_id": {"$in": project_ids},
                    **{f"refresh_status.{content.value}.ok": True for content in ContentType}})
                return done == len(project_ids)

            await eventually(all_ok, timeout=120, interval=0.5, what="600 caches refreshed")
        calls = await vk_sandbox.control.calls()
        assert [call for call in calls if call["error_code"] == 6] == []
        reads = [call for call in calls if call["method"] == "wall.get"]
        assert len(reads) >= 600 and all(call["via_execute"] for call in reads)
        requests = [call for call in calls if call["method"] == "execute"]
        assert len(requests) < len(project_ids) / 2


class TestRestingToken:
    async def test_a_dead_token_is_probed_at_most_once_per_interval(
        self, vk_settings: Settings, vk_sandbox: RunningSandbox, db: AsyncDatabase[Document]
    ) -> None:
        """20 callbacks in 5 s for a project whose token VK refuses (error 5) cost at most 2
        VK calls; the rest shows on the project; a new token in MongoDB is used at once."""
        settings = stack_settings(vk_settings)
        async with callback_path(settings):
            community = await connected_community(db, vk_sandbox, settings)
            await db[PROJECTS].update_one({"_id": community.project_id},
                                          {"$set": {"vk_user_token": "revoked-token"}})
            await vk_sandbox.control.clear_calls()
            for n in range(20):
                await vk_sandbox.control.send_callback(
                    community.group_id, "wall_post_new", {"id": 1000 + n, "post_type": "post"})
                await asyncio.sleep(0.25)

            async def all_delivered() -> bool:
                deliveries = await vk_sandbox.control.deliveries(event_type="wall_post_new")
                return len(deliveries) >= 20 and all(d["delivered"] for d in deliveries)

            await eventually(all_delivered, what="20 callbacks answered ok")
            await asyncio.sleep(0.5)  # the last events' rounds
            calls = await vk_sandbox.control.calls("wall.get")
            assert 1 <= len(calls) <= 2 and {call["error_code"] for call in calls} == {5}
            project = await db[PROJECTS].find_one({"_id": community.project_id})
            assert project is not None
            rest = project["vk_token_rest"]
            assert rest["code"] == 5 and rest["fingerprint"] == token_fingerprint("revoked-token")
            assert "revoked-token" not in str(rest)
            status = project["refresh_status"]["published"]
            assert status["ok"] is False and status["token_resting"] is True

            await db[PROJECTS].update_one({"_id": community.project_id},
                                          {"$set": {"vk_user_token": community.token}})
            post = await vk_sandbox.control.create_post(community.group_id, "Token is back")

            async def cached() -> bool:
                return post["id"] in await cached_ids(db, community.project_id,
                                                      ContentType.PUBLISHED)

            await eventually(cached, what="the new token used at once")
            project = await db[PROJECTS].find_one({"_id": community.project_id})
            assert project is not None and "vk_token_rest" not in project
            assert project["refresh_status"]["published"]["ok"] is True

