"""Connecting a project's community to our gateway through VK's Callback API.

Used by ``make run`` (against the sandbox) and by the ops CLI (against VK).
Steps, as VK requires them: fetch the confirmation code and store it on the
project (the gateway must answer VK's handshake with it); create or update the
project's callback server with a fresh random secret, then store the secret and the
server's id (if VK refused the change, the old, working secret stays); enable exactly
the events the refresher uses; report the server as VK sees it.

Each project has a server of its own, so several projects can share a community (each
one's secret tells the gateway whose copy of an event it is): the project's server is
the one whose id it stored (``vk_callback_server_id``). A project without a stored id
takes over the server with our URL or title only when it is its community's only
project (set up before ids were stored); otherwise it gets a new server.
"""

from __future__ import annotations

import asyncio
import secrets

from pymongo.asynchronous.database import AsyncDatabase

from shared.documents import Project
from shared.mongo import PROJECTS, Document
from shared.vk import CallbackServer, VkClient

# Exactly the events the refresher turns into refreshes (services/refresher/content.py).
REFRESH_EVENTS = ("wall_post_new", "wall_repost", "wall_schedule_post_new",
                  "wall_schedule_post_delete")
SERVER_TITLE = "vk-planner"  # VK limits titles to 14 characters


class ProjectNotFound(LookupError):
    pass


async def setup_callback(db: AsyncDatabase[Document], vk: VkClient, project_id: str, url: str,
                         api_version: str) -> CallbackServer:
    project = await db[PROJECTS].find_one({"_id": project_id})
    if project is None:
        raise ProjectNotFound(project_id)
    read = Project.from_document(project)
    token, group_id = read.token, read.group_id
    code = await vk.groups_get_callback_confirmation_code(token, group_id)
    # The code first: VK's handshake, started by adding the server, needs it.
    await db[PROJECTS].update_one({"_id": project_id}, {"$set": {"vk_confirmation_code": code}})
    secret = secrets.token_urlsafe(24)

    servers = await vk.groups_get_callback_servers(token, group_id)
    alone = not await db[PROJECTS].count_documents(
        {"vk_group_id": group_id, "_id": {"$ne": project_id}}, limit=1)
    ours = our_server(servers, url, stored_server_id(project), alone=alone)
    if ours is None:
        server_id = await vk.groups_add_callback_server(token, group_id, url, SERVER_TITLE, secret)
    else:
        server_id = ours.id
        await vk.groups_edit_callback_server(token, group_id, server_id, url, SERVER_TITLE, secret)
    # The secret only once VK has it: if VK refused the change, the working secret stays.
    # Events signed with it in between get 403 and VK retries them.
    await db[PROJECTS].update_one({"_id": project_id}, {"$set": {
        "vk_callback_secret": secret, "vk_callback_server_id": server_id}})
    await vk.groups_set_callback_settings(token, group_id, server_id, api_version,
                                          dict.fromkeys(REFRESH_EVENTS, True))
    return await callback_status(vk, token, group_id, server_id)


def stored_server_id(project: Document) -> int | None:
    value = project.get("vk_callback_server_id")
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def our_server(servers: list[CallbackServer], url: str, stored_id: int | None, *,
               alone: bool) -> CallbackServer | None:
    """The project's own callback server among the community's, if any (module docstring)."""
    if stored_id is not None:
        return next((server for server in servers if server.id == stored_id), None)
    if not alone:  # the server with our URL may well be another project's
        return None
    return next((server for server in servers
                 if server.url == url or server.title == SERVER_TITLE), None)


async def callback_status(vk: VkClient, token: str, group_id: int, server_id: int
                          ) -> CallbackServer:
    servers = await vk.groups_get_callback_servers(token, group_id)
    for server in servers:
        if server.id == server_id:
            return server
    raise LookupError(f"callback server {server_id} vanished from community {group_id}")


async def wait_until_confirmed(vk: VkClient, token: str, group_id: int, server: CallbackServer,
                               timeout: float = 10.0) -> CallbackServer:
    """Poll until VK finished the confirmation handshake (``ok`` or ``failed``) or timeout."""
    deadline = asyncio.get_running_loop().time() + timeout
    while server.status == "wait" and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.2)
        server = await callback_status(vk, token, group_id, server.id)
    return server
