"""The execute method: batched calls, per-call failures, compile errors."""

from __future__ import annotations

from typing import Any

from tests.support.sandbox import RunningSandbox
from tools.vk_sandbox.schema import validate_method_response


def check_slots(methods: list[str], response: list[Any]) -> None:
    """Each successful slot is what the method alone would answer (schema-checked)."""
    for method, slot in zip(methods, response, strict=True):
        if slot is not False:
            validate_method_response(method, {"response": slot})


class TestExecute:
    async def test_list_of_wall_gets(self, sandbox: RunningSandbox) -> None:
        """return [API.wall.get(...), ...] answers a list of wall.get results in order."""
        first, admin = await sandbox.community_with_admin()
        second = await sandbox.control.create_community()
        await sandbox.control.create_post(first.group_id, "in first")
        await sandbox.control.create_post(second.group_id, "in second")
        await sandbox.control.create_post(second.group_id, "also in second")
        code = (f'return [API.wall.get({{"owner_id": {-first.group_id}, "filter": "owner", '
                f'"count": 20}}), API.wall.get({{\'owner_id\': {-second.group_id}, count: 1}})];')
        body = await sandbox.api("execute", admin.token, code=code)
        assert "execute_errors" not in body
        check_slots(["wall.get", "wall.get"], body["response"])
        one, two = body["response"]
        assert [item["text"] for item in one["items"]] == ["in first"]
        assert two["count"] == 2 and [item["text"] for item in two["items"]] == ["also in second"]

    async def test_single_call(self, sandbox: RunningSandbox) -> None:
        """return API.wall.get({...}); answers that call's result itself."""
        community, admin = await sandbox.community_with_admin()
        body = await sandbox.api(
            "execute", admin.token,
            code=f'return API.wall.get({{"owner_id": {-community.group_id}}});')
        assert body == {"response": {"count": 0, "items": []}}
        validate_method_response("wall.get", body)

    async def test_failing_call_is_false_with_execute_errors(
            self, sandbox: RunningSandbox) -> None:
        """A failing inner call gives false in its slot and an execute_errors entry."""
        community, admin = await sandbox.community_with_admin()
        code = (f'return [API.wall.get({{"owner_id": {-community.group_id}}}), '
                f'API.wall.get({{"owner_id": {-community.group_id}, "count": 500}}), '
                f'API.wall.nosuch({{}})];')
        body = await sandbox.api("execute", admin.token, code=code)
        assert body["response"][0] == {"count": 0, "items": []}
        assert body["response"][1:] == [False, False]
        assert [(e["method"], e["error_code"]) for e in body["execute_errors"]] == [
            ("wall.get", 100), ("wall.nosuch", 3)]
        assert all(e["error_msg"] for e in body["execute_errors"])

    async def test_inner_calls_keep_token_rules(self, sandbox: RunningSandbox) -> None:
        """With a community token, inner wall.get calls fail with 27 like direct ones."""
        community, _ = await sandbox.community_with_admin()
        body = await sandbox.api(
            "execute", community.community_token,
            code=f'return [API.wall.get({{"owner_id": {-community.group_id}}})];')
        assert body["response"] == [False]
        assert body["execute_errors"][0]["error_code"] == 27

    async def test_unsupported_code_is_12(self, sandbox: RunningSandbox) -> None:
        """Code outside the supported form is error 12; no code at all is error 100."""
        _, admin = await sandbox.community_with_admin()
        body = await sandbox.api("execute", admin.token, code="var x = 1; return x;")
        assert body["error"]["error_code"] == 12
        assert body["error"]["error_msg"].startswith("Unable to compile code")
        body = await sandbox.api("execute", admin.token)
        assert body["error"]["error_code"] == 100

    async def test_inner_calls_are_logged(self, sandbox: RunningSandbox) -> None:
        """The call log shows execute and each inner call, marked via_execute."""
        community, admin = await sandbox.community_with_admin()
        call = f'API.wall.get({{"owner_id": {-community.group_id}, "count": 5}})'
        await sandbox.api("execute", admin.token, code=f"return [{call}, {call}];")
        calls = await sandbox.control.calls()
        assert [(c["method"], c["via_execute"]) for c in calls] == [
            ("execute", False), ("wall.get", True), ("wall.get", True)]
        assert calls[1]["params"] == {"owner_id": str(-community.group_id), "count": "5"}
        assert calls[1]["token_kind"] == "user"
