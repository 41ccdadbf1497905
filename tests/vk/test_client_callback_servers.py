"""The Callback API server helpers against the VK sandbox."""

from __future__ import annotations

import pytest

from shared.vk.client import VkClient
from shared.vk.errors import VkHttpError
from shared.vk.models import CallbackServer
from shared.vk.tokens import TokenKind
from tests.support.communities import Community
from tools.vk_sandbox.control import SandboxControl

# Nothing listens there: the sandbox's confirmation handshake fails fast and quietly.
RECEIVER_URL = "http://127.0.0.1:9/callback"


class TestCallbackServerHelpers:
    async def test_confirmation_code(self, vk: VkClient, community: Community) -> None:
        """The community's confirmation string, as VK gives it."""
        code = await vk.groups_get_callback_confirmation_code(community.token,
                                                              community.group_id)
        assert code == community.confirmation_code

    async def test_add_list_edit_and_configure_a_server(self, vk: VkClient,
                                                        community: Community) -> None:
        """Servers round-trip through add, get, edit and set-settings (community token)."""
        token, group_id, kind = community.community_token, community.group_id, TokenKind.COMMUNITY

        server_id = await vk.groups_add_callback_server(token, group_id, RECEIVER_URL,
                                                        "planner", "secret-1", kind=kind)
        await vk.groups_edit_callback_server(token, group_id, server_id, RECEIVER_URL,
                                             "planner-2", "secret-2", kind=kind)
        await vk.groups_set_callback_settings(token, group_id, server_id, "5.199",
                                              {"wall_post_new": True, "wall_repost": False,
                                               "wall_schedule_post_new": True}, kind=kind)
        servers = await vk.groups_get_callback_servers(token, group_id, kind=kind)
        settings = await vk.call("groups.getCallbackSettings", token,
                                 {"group_id": group_id, "server_id": server_id}, kind=kind)

        [server] = servers
        assert isinstance(server, CallbackServer)
        assert (server.id, server.title, server.url, server.secret_key) == (
            server_id, "planner-2", RECEIVER_URL, "secret-2")
        assert settings["api_version"] == "5.199"
        assert {name: settings["events"][name] for name in
                ("wall_post_new", "wall_repost", "wall_schedule_post_new")} == {
            "wall_post_new": 1, "wall_repost": 0, "wall_schedule_post_new": 1}

    async def test_adding_a_server_is_not_repeated_blindly(self, sandbox: SandboxControl,
                                                           vk: VkClient,
                                                           community: Community) -> None:
        """A 5xx may hide an added server; repeating would add a second one."""
        await sandbox.inject_fault("http_status", method="groups.addCallbackServer",
                                   status=502, count=1)
        with pytest.raises(VkHttpError) as raised:
            await vk.groups_add_callback_server(community.token, community.group_id,
                                                RECEIVER_URL, "planner", "secret")
        assert raised.value.outcome_unknown
        assert len(await sandbox.calls("groups.addCallbackServer")) == 1

    @pytest.mark.parametrize("event", ["group_id", "Wall Post", "x&y=1"])
    async def test_event_names_cannot_smuggle_parameters(self, vk: VkClient,
                                                         community: Community,
                                                         event: str) -> None:
        """An event name that is a real parameter or not a name at all is refused."""
        with pytest.raises(ValueError):
            await vk.groups_set_callback_settings(community.token, community.group_id, 1,
                                                  "5.199", {event: True})
