"""VK's error behaviour of /method/: tokens (5, 27, 15), params (100), methods (3), version (8)."""

from __future__ import annotations

from typing import Any

from tests.support.sandbox import RunningSandbox, running_sandbox
from tools.vk_sandbox import DEMO_COMMUNITY_TOKEN, DEMO_USER_TOKEN


def error_code(body: dict[str, Any]) -> Any:
    error = body["error"]
    assert isinstance(error, dict)
    return error["error_code"]


class TestTokenErrors:
    async def test_missing_token_is_5(self, sandbox: RunningSandbox) -> None:
        """No access_token: error 5 with VK's message, HTTP 200."""
        body = await sandbox.api("wall.get", None, owner_id=-1)
        assert body["error"]["error_code"] == 5
        assert body["error"]["error_msg"] == "User authorization failed: no access_token passed."

    async def test_unknown_token_is_5(self, sandbox: RunningSandbox) -> None:
        """A token the sandbox never issued: error 5 (invalid access_token)."""
        community, _ = await sandbox.community_with_admin()
        body = await sandbox.api("wall.get", "vk1.a.bogus", owner_id=-community.group_id)
        assert error_code(body) == 5
        assert "invalid access_token" in body["error"]["error_msg"]

    async def test_wall_methods_refuse_community_tokens(self, sandbox: RunningSandbox) -> None:
        """wall.get/post/getById/delete with a community token: error 27."""
        community, _ = await sandbox.community_with_admin()
        owner = -community.group_id
        token = community.community_token
        calls: list[tuple[str, dict[str, Any]]] = [
            ("wall.get", {"owner_id": owner}),
            ("wall.post", {"owner_id": owner, "from_group": 1, "message": "x"}),
            ("wall.getById", {"posts": f"{owner}_1"}),
            ("wall.delete", {"owner_id": owner, "post_id": 1}),
        ]
        for method, params in calls:
            body = await sandbox.api(method, token, **params)
            assert error_code(body) == 27, method
            assert body["error"]["error_msg"] == (
                "Group authorization failed: method is unavailable with group auth.")

    async def test_non_admin_is_15(self, sandbox: RunningSandbox) -> None:
        """A user who does not administer the community: wall.post and groups.* are error 15."""
        community, _ = await sandbox.community_with_admin()
        stranger = await sandbox.control.create_user()
        body = await sandbox.api("wall.post", stranger.token, owner_id=-community.group_id,
                                 from_group=1, message="spam")
        assert error_code(body) == 15
        body = await sandbox.api("groups.getCallbackConfirmationCode", stranger.token,
                                 group_id=community.group_id)
        assert error_code(body) == 15
        other = await sandbox.control.create_community()
        body = await sandbox.api("groups.getCallbackServers", other.community_token,
                                 group_id=community.group_id)
        assert error_code(body) == 15, "a community token only works for its own community"

    async def test_admin_and_community_token_pass(self, sandbox: RunningSandbox) -> None:
        """The admin's user token and the community's own token may call groups.*."""
        community, admin = await sandbox.community_with_admin()
        for token in (admin.token, community.community_token):
            body = await sandbox.api("groups.getCallbackConfirmationCode", token,
                                     group_id=community.group_id)
            assert body == {"response": {"code": community.confirmation_code}}


class TestRequestErrors:
    async def test_missing_required_param_is_100(self, sandbox: RunningSandbox) -> None:
        """A missing required parameter: error 100 naming it."""
        community, admin = await sandbox.community_with_admin()
        body = await sandbox.api("groups.addCallbackServer", admin.token,
                                 group_id=community.group_id, title="t")
        assert error_code(body) == 100
        assert body["error"]["error_msg"] == (
            "One of the parameters specified was missing or invalid: url is undefined")
        body = await sandbox.api("wall.getById", admin.token)
        assert error_code(body) == 100

    async def test_unknown_method_is_3(self, sandbox: RunningSandbox) -> None:
        """A method the sandbox does not know: error 3."""
        _, admin = await sandbox.community_with_admin()
        body = await sandbox.api("wall.nosuch", admin.token)
        assert error_code(body) == 3
        assert body["error"]["error_msg"] == "Unknown method passed"

    async def test_missing_version_is_8(self, sandbox: RunningSandbox) -> None:
        """Without ``v`` VK refuses the request (error 8)."""
        community, admin = await sandbox.community_with_admin()
        body = await sandbox.api("wall.get", admin.token, version=None,
                                 owner_id=-community.group_id)
        assert error_code(body) == 8

    async def test_request_params_never_echo_the_token(self, sandbox: RunningSandbox) -> None:
        """request_params lists the request (method, oauth, params) but not access_token."""
        community, admin = await sandbox.community_with_admin()
        body = await sandbox.api("wall.get", admin.token, owner_id=-community.group_id,
                                 count=101)
        assert error_code(body) == 100
        params = {p["key"]: p["value"] for p in body["error"]["request_params"]}
        assert params == {"method": "wall.get", "oauth": "1", "v": "5.199",
                          "owner_id": str(-community.group_id), "count": "101"}
        assert admin.token not in str(body)

    async def test_get_query_is_accepted(self, sandbox: RunningSandbox) -> None:
        """Parameters may come in the query string of a GET, as VK allows."""
        community, admin = await sandbox.community_with_admin()
        body = await sandbox.api("wall.get", admin.token, http_get=True,
                                 owner_id=-community.group_id)
        assert body == {"response": {"count": 0, "items": []}}


class TestDemoState:
    async def test_demo_community(self) -> None:
        """--demo seeds community 1, its admin's user token and its community token."""
        async with running_sandbox(demo=True) as sandbox:
            body = await sandbox.api("groups.getCallbackConfirmationCode", DEMO_USER_TOKEN,
                                     group_id=1)
            code = body["response"]["code"]
            assert len(code) == 8 and int(code, 16) >= 0
            again = await sandbox.api("groups.getCallbackConfirmationCode",
                                      DEMO_COMMUNITY_TOKEN, group_id=1)
            assert again["response"]["code"] == code, "the code is stable per community"
            posted = await sandbox.api("wall.post", DEMO_USER_TOKEN, owner_id=-1, from_group=1,
                                       message="demo")
            assert posted["response"]["post_id"] == 1
