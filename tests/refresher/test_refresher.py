from __future__ import annotations

import pytest
from bson import Int64, ObjectId
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from services.refresher.coalescing import RefreshKey, Round
from services.refresher.handler import Refresher
from shared.broker import Broker
from shared.mongo import PROJECTS, ContentType, Document
from shared.settings import Settings
from shared.vk import VkClient, VkTransientError
from tests.support.documents import insert_project
from tests.support.metrics import MetricsSince
from tests.support.sandbox import RunningSandbox

FAILURES = "refresher_project_refresh_failures_total"


def first_round(fence: int = 1) -> Round:
    return Round(fence=fence, target=1, covered=1, correlation_id="corr-1")


class TestRefresher:
    async def test_scheduled_refresh_fills_the_cache_and_records_success(
        self, vk_settings: Settings, vk_sandbox: RunningSandbox, db: AsyncDatabase[Document],
        mongo_client: AsyncMongoClient[Document], broker: Broker,
    ) -> None:
        """All postponed posts land in scheduled_posts; the project shows the refresh ok."""
        community = await vk_sandbox.control.create_community()
        admin = await vk_sandbox.control.create_user(admin_of=[community.group_id])
        project_id = await insert_project(db, group_id=community.group_id, token=admin.token)
        for n in range(3):
            await vk_sandbox.control.create_post(community.group_id, f"p{n}",
                                                 publish_date=1_900_000_000 + n)
        async with VkClient.from_settings(vk_settings) as vk:
            refresher = Refresher(mongo_client, db, vk, broker, published_limit=100)
            await refresher(RefreshKey(project_id, ContentType.SCHEDULED), first_round())
        texts = {d["text"] async for d in db["scheduled_posts"].find({"project_id": project_id})}
        assert texts == {"p0", "p1", "p2"}
        project = await db[PROJECTS].find_one({"_id": project_id})
        assert project is not None and project["refresh_status"]["scheduled"]["ok"] is True

    @pytest.mark.parametrize("project_id", [ObjectId(), 4242, Int64(77)], ids=["objectid", "int", "long"])
    async def test_a_project_whose_id_is_not_a_string_is_found_by_its_label(
        self, vk_settings: Settings, vk_sandbox: RunningSandbox, db: AsyncDatabase[Document],
        mongo_client: AsyncMongoClient[Document], broker: Broker, project_id: object,
    ) -> None:
        """Messages carry ids as labels (``str``): a project written by others with an
        ObjectId or a number as ``_id`` is still refreshed, and its status recorded."""
        community = await vk_sandbox.control.create_community()
        admin = await vk_sandbox.control.create_user(admin_of=[community.group_id])
        await db[PROJECTS].insert_one({"_id": project_id, "vk_group_id": community.group_id,
                                       "vk_user_token": admin.token})
        await vk_sandbox.control.create_post(community.group_id, "later",
                                             publish_date=1_900_000_000)
        async with VkClient.from_settings(vk_settings) as vk:
            refresher = Refresher(mongo_client, db, vk, broker, published_limit=100)
            await refresher(RefreshKey(str(project_id), ContentType.SCHEDULED), first_round())
        texts = [d["text"] async for d in db["scheduled_posts"].find({"project_id": str(project_id)})]
        assert texts == ["later"]
        project = await db[PROJECTS].find_one({"_id": project_id})
        assert project is not None and project["refresh_status"]["scheduled"]["ok"] is True

    async def test_bad_token_is_recorded_on_the_project_not_retried(
        self, vk_settings: Settings, vk_sandbox: RunningSandbox, db: AsyncDatabase[Document],
        mongo_client: AsyncMongoClient[Document], broker: Broker,
    ) -> None:
        """A permanent VK error (5) ends the refresh with the error on the project, and is
        counted as the project's permanent failure."""
        community = await vk_sandbox.control.create_community()
        project_id = await insert_project(db, group_id=community.group_id, token="revoked-token")
        since = MetricsSince()
        async with VkClient.from_settings(vk_settings) as vk:
            refresher = Refresher(mongo_client, db, vk, broker, published_limit=100)
            await refresher(RefreshKey(project_id, ContentType.PUBLISHED), first_round())
        project = await db[PROJECTS].find_one({"_id": project_id})
        assert project is not None
        status = project["refresh_status"]["published"]
        assert status["ok"] is False and "5" in status["error"]
        assert "revoked-token" not in status["error"]
        assert len(await vk_sandbox.control.calls("wall.get")) == 1
        assert since(FAILURES, project_id=project_id, kind="permanent") == 1
        assert since(FAILURES, project_id=project_id, kind="transient") == 0

    async def test_transient_failure_is_raised_for_a_later_retry(
        self, vk_settings: Settings, vk_sandbox: RunningSandbox, db: AsyncDatabase[Document],
        mongo_client: AsyncMongoClient[Document], broker: Broker,
    ) -> None:
        """VK still failing after the client's retries: visible on the project, counted as
        the project's transient failure, raised."""
        since = MetricsSince()
        community = await vk_sandbox.control.create_community()
        admin = await vk_sandbox.control.create_user(admin_of=[community.group_id])
        project_id = await insert_project(db, group_id=community.group_id, token=admin.token)
        await vk_sandbox.control.inject_fault("http_status", method="wall.get", status=503,
                                              count=100)
        settings = vk_settings.model_copy(update={"vk_max_attempts": 2})
        async with VkClient.from_settings(settings) as vk:
            refresher = Refresher(mongo_client, db, vk, broker, published_limit=100)
            with pytest.raises(VkTransientError):
                await refresher(RefreshKey(project_id, ContentType.PUBLISHED), first_round())
        project = await db[PROJECTS].find_one({"_id": project_id})
        assert project is not None
        assert "will retry" in project["refresh_status"]["published"]["error"]
        assert since(FAILURES, project_id=project_id, kind="transient") == 1
