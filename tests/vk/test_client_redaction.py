"""The token never leaves the client: not in errors, their tracebacks, nor log events."""

from __future__ import annotations

import traceback

import pytest
from structlog.testing import capture_logs

from shared.vk.client import VkClient
from shared.vk.errors import VkAuthError, VkInvalidParameter, VkNetworkError
from tests.support.communities import Community
from tests.support.vk_client import closed_port_url, make_client
from tests.vk.recording_server import RecordingServer
from tools.vk_sandbox.control import SandboxControl

TOKEN = "vk1.a.SECRET-token-for-redaction-tests-0123456789abcdef"


def everything_said_about(error: BaseException) -> str:
    """Every rendering of an error a log line or a crash report could contain."""
    return "\n".join([str(error), repr(error), repr(error.args),
                      "".join(traceback.format_exception(error)),
                      repr(getattr(error, "request_params", None))])


def echoing_error(code: int) -> dict[str, object]:
    """A hostile VK error that quotes the token in its message and echoed parameters."""
    return {"error": {
        "error_code": code,
        "error_msg": f"Failure for access_token {TOKEN} (token={TOKEN})",
        "request_params": [{"key": "method", "value": "wall.get"},
                           {"key": "access_token", "value": TOKEN},
                           {"key": "comment", "value": f"sent with {TOKEN}"}],
    }}


class TestVkClientRedaction:
    async def test_echoed_token_is_removed_from_errors_and_retry_logs(self) -> None:
        """A retried 6 and a final 5 both quote the token; neither error nor log keeps it."""
        server = RecordingServer([echoing_error(6), echoing_error(5)])
        async with server.running() as api_url, make_client(api_url) as vk:
            with capture_logs() as logs, pytest.raises(VkAuthError) as raised:
                await vk.call("wall.get", TOKEN, {"owner_id": -1})

        assert [request.form["access_token"] for request in server.requests] == [TOKEN, TOKEN]
        assert [entry["event"] for entry in logs if entry["log_level"] == "warning"] == [
            "vk_call_retry"]
        assert TOKEN not in everything_said_about(raised.value)
        assert TOKEN not in repr(logs)
        assert raised.value.request_params == {"method": "wall.get", "comment": "sent with ***"}

    async def test_echoed_secret_key_is_dropped(self, sandbox: SandboxControl, vk: VkClient,
                                                community: Community) -> None:
        """VK echoes request parameters; a callback server's secret_key is not kept."""
        await sandbox.inject_fault("error", method="groups.addCallbackServer", code=100)

        with pytest.raises(VkInvalidParameter) as raised:
            await vk.groups_add_callback_server(community.token, community.group_id,
                                                "http://127.0.0.1:9/cb", "planner",
                                                "very-secret-key-123")

        assert "very-secret-key-123" not in everything_said_about(raised.value)
        assert raised.value.request_params["title"] == "planner"

    async def test_network_errors_do_not_carry_the_token(self) -> None:
        """A failure before any answer names the method, not the request body."""
        async with make_client(closed_port_url(), max_attempts=1) as vk:
            with capture_logs() as logs, pytest.raises(VkNetworkError) as raised:
                await vk.call("wall.get", TOKEN)

        assert raised.value.method == "wall.get"
        assert TOKEN not in everything_said_about(raised.value)
        assert TOKEN not in repr(logs)

    async def test_success_logs_do_not_carry_the_token(self) -> None:
        """Debug events of a successful call name the method only."""
        server = RecordingServer([{"response": {"ok": 1}}])
        async with server.running() as api_url, make_client(api_url) as vk:
            with capture_logs() as logs:
                assert await vk.call("wall.get", TOKEN) == {"ok": 1}

        assert [entry["event"] for entry in logs] == ["vk_call"]
        assert TOKEN not in repr(logs)
        assert TOKEN not in repr(vk)

