"""``callback setup|status`` against the VK sandbox, with the gateway and a refresher in-process."""

from __future__ import annotations

from pymongo.asynchronous.database import AsyncDatabase

from shared.mongo import ContentType, Document
from shared.settings import Settings
from tests.e2e.stack import cached_ids, callback_path, gateway_url, stack_settings
from tests.support.ops import Ops
from tests.support.sandbox import RunningSandbox
from tests.support.waiting import eventually
from tools.mongod import free_port


async def add_project(ops: Ops, sandbox: RunningSandbox, project_id: str) -> tuple[int, str]:
    """A sandbox community with an admin, added as a project with the CLI; (group, token)."""
    community = await sandbox.control.create_community()
    admin = await sandbox.control.create_user(admin_of=[community.group_id])
    added = await ops("projects", "add", "--id", project_id, "--name", community.name,
                      "--group-id", str(community.group_id),
                      environ={"VK_USER_TOKEN": admin.token})
    assert added.code == 0, added.err
    return community.group_id, admin.token


class TestCallbackSetup:
    async def test_confirmed_server_delivers_events_to_the_refresher(
            self, vk_settings: Settings, vk_sandbox: RunningSandbox,
            db: AsyncDatabase[Document]) -> None:
        """setup ends with VK's handshake done (ok); then a new post reaches the cache."""
        settings = stack_settings(vk_settings)
        ops = Ops(settings)
        async with callback_path(settings):
            group_id, token = await add_project(ops, vk_sandbox, "shop")
            setup = await ops("callback", "setup", "shop", "--url", gateway_url(settings))
            assert setup.code == 0, setup.err
            assert setup.out.splitlines()[-1].endswith(f"(vk-planner) {gateway_url(settings)}: ok")

            status = await ops("callback", "status", "shop")
            assert status.code == 0, status.err
            assert status.out.splitlines()[1].split()[1:] == [
                "vk-planner", gateway_url(settings), "ok"]

            post = await vk_sandbox.control.create_post(group_id, "Fresh from VK")

            async def published() -> bool:
                return post["id"] in await cached_ids(db, "shop", ContentType.PUBLISHED)

            await eventually(published, what="the new post in the published cache")
            shown = await ops("projects", "show", "shop")
            assert any(line.split()[:2] == ["published", "ok"] for line in shown.out.splitlines())
            for result in (setup, status, shown):
                assert token not in result.text

    async def test_two_projects_on_one_community_each_get_its_events(
            self, vk_settings: Settings, vk_sandbox: RunningSandbox,
            db: AsyncDatabase[Document]) -> None:
        """Two teams plan for one community: each project's setup makes a callback server
        of its own (the second does not take over the first's), VK confirms both, and a
        new post reaches both projects' caches (VK sends a copy to each server, each with
        its project's secret); setting one up again keeps the other's server."""
        settings = stack_settings(vk_settings)
        ops = Ops(settings)
        async with callback_path(settings):
            group_id, token = await add_project(ops, vk_sandbox, "shop")
            added = await ops("projects", "add", "--id", "shop-2", "--name", "Second team",
                              "--group-id", str(group_id), environ={"VK_USER_TOKEN": token})
            assert added.code == 0, added.err
            for project_id in ("shop", "shop-2", "shop"):
                setup = await ops("callback", "setup", project_id, "--url", gateway_url(settings))
                assert setup.code == 0, setup.err
                assert setup.out.splitlines()[-1].endswith(": ok")
            projects = {document["_id"]: document async for document in db["projects"].find()}
            server_ids = {p["vk_callback_server_id"] for p in projects.values()}
            secrets = {p["vk_callback_secret"] for p in projects.values()}
            assert len(server_ids) == 2 and len(secrets) == 2
            post = await vk_sandbox.control.create_post(group_id, "For both teams")

            async def both_cached() -> bool:
                caches = [await cached_ids(db, project_id, ContentType.PUBLISHED)
                          for project_id in ("shop", "shop-2")]
                return all(post["id"] in cache for cache in caches)

            await eventually(both_cached, what="the new post in both projects' caches")

    async def test_unreachable_gateway_fails_and_status_says_so(
            self, ops: Ops, vk_sandbox: RunningSandbox) -> None:
        """With nothing at the URL VK marks the server failed: setup and status exit 1."""
        await add_project(ops, vk_sandbox, "shop")
        url = f"http://127.0.0.1:{free_port()}/api/callback"
        setup = await ops("callback", "setup", "shop", "--url", url, "--timeout", "5")
        assert setup.code == 1
        assert setup.err == (f"error: VK did not confirm {url} (status failed): the gateway must "
                             "be reachable from VK at that URL and serve this project\n")
        status = await ops("callback", "status", "shop")
        assert status.code == 1
        assert status.out.splitlines()[1].split()[-1] == "failed"
        assert status.err.startswith("error: callback server ")
        assert status.err.endswith(f"run: python -m tools.ops callback setup shop --url {url}\n")

    async def test_unknown_project(self, ops: Ops) -> None:
        """An unknown project: exit 1, one line, and VK is not called."""
        result = await ops("callback", "setup", "nope", "--url", "https://example.org/cb")
        assert (result.code, result.err) == (1, "error: unknown project: nope\n")


class TestCallbackStatus:
    async def test_vk_error_shows_code_and_message_not_the_token(
            self, ops: Ops, db: AsyncDatabase[Document]) -> None:
        """A token VK rejects: exit 1 with VK's code and message; the token is not printed."""
        bad_token = "vk1.a.revoked-token-0123456789"
        added = await ops("projects", "add", "--id", "p", "--name", "P", "--group-id", "1",
                          environ={"VK_USER_TOKEN": bad_token})
        assert added.code == 0, added.err
        result = await ops("callback", "status", "p")
        assert result.code == 1
        assert result.err.startswith("error: VK error 5 in groups.getCallbackServers: ")
        assert len(result.err.splitlines()) == 1
        assert bad_token not in result.text

    async def test_no_server_of_ours(self, ops: Ops, vk_sandbox: RunningSandbox) -> None:
        """A community without the vk-planner server is not ok, with the command to fix it."""
        group_id, _ = await add_project(ops, vk_sandbox, "shop")
        result = await ops("callback", "status", "shop")
        assert (result.code, result.out) == (1, "")
        assert result.err == (f"error: community {group_id} has no 'vk-planner' callback server; "
                              "run: python -m tools.ops callback setup shop --url URL\n")

    async def test_url_must_be_http(self, ops: Ops) -> None:
        """--url is checked before anything is done (usage error)."""
        result = await ops("callback", "setup", "p", "--url", "ftp://example.org/cb")
        assert result.code == 2
        assert "argument --url: not an http(s) URL: 'ftp://example.org/cb'" in result.err
