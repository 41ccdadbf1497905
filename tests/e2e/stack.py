"""Running the services in-process against real servers, for end-to-end tests."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from pymongo.asynchronous.database import AsyncDatabase

from services.callback_gateway.service import lifespan as gateway_lifespan
from services.refresher.service import lifespan as refresher_lifespan
from services.update_notifier.service import lifespan as notifier_lifespan
from shared.mongo import ContentType, Document
from shared.settings import Settings
from shared.vk import VkClient
from tests.support.communities import Community
from tests.support.documents import insert_project
from tests.support.sandbox import RunningSandbox
from tools.callback_setup import setup_callback
from tools.mongod import free_port


def stack_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={
        "gateway_host": "127.0.0.1", "gateway_port": free_port(),
        "notifier_host": "127.0.0.1", "notifier_port": free_port(),
        "refresher_lease_seconds": 5.0,
        # Reconciliation's VK reads stay out of the tests not about it (each project is
        # first due at a random point of the interval: here, within a week).
        "reconcile_interval_seconds": 7 * 86400.0,
    })


def gateway_url(settings: Settings) -> str:
    return f"http://127.0.0.1:{settings.gateway_port}/api/callback"


def notifier_url(settings: Settings, path: str) -> str:
    return f"http://127.0.0.1:{settings.notifier_port}{path}"


@contextlib.asynccontextmanager
async def callback_path(settings: Settings, *, refreshers: int = 1,
                        notifiers: int = 0) -> AsyncIterator[list[Settings]]:
    """Gateway, refresher and notifier replicas, all in this process.

    Yields the settings of each notifier replica (each on its own port).
    """
    notifier_settings = [settings] + [
        settings.model_copy(update={"notifier_port": free_port()}) for _ in range(notifiers - 1)]
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(gateway_lifespan(settings))
        for _ in range(refreshers):
            await stack.enter_async_context(refresher_lifespan(settings))
        for replica in notifier_settings[:notifiers]:
            await stack.enter_async_context(notifier_lifespan(replica))
        yield notifier_settings[:notifiers]


async def connected_community(db: AsyncDatabase[Document], sandbox: RunningSandbox,
                              settings: Settings) -> Community:
    """A sandbox community with an admin, its project, and the gateway as callback server."""
    created = await sandbox.control.create_community()
    admin = await sandbox.control.create_user(admin_of=[created.group_id])
    project_id = await insert_project(db, group_id=created.group_id, token=admin.token,
                                      confirmation_code="")
    async with VkClient.from_settings(settings) as vk:
        server = await setup_callback(db, vk, project_id, gateway_url(settings),
                                      settings.vk_api_version)
    assert server.status in {"ok", "wait", "failed"}, server  # "failed" when no gateway runs
    return Community(created.group_id, admin.token, community_token=created.community_token,
                     confirmation_code=created.confirmation_code, project_id=project_id)


async def cached_ids(db: AsyncDatabase[Document], project_id: str,
                     content: ContentType) -> set[int]:
    return {doc["vk_post_id"] async for doc in db[content.collection].find({"project_id": project_id})}
