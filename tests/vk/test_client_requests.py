"""What goes on the wire, how a client is built, and whose session it closes."""

from __future__ import annotations

import aiohttp
import pytest

from shared.settings import Settings
from shared.vk.client import VkClient
from shared.vk.models import WallFilter
from shared.vk.rate_limit import PROCESS_RATE_LIMITERS, RateLimit, RateLimiterRegistry
from shared.vk.tokens import TokenKind
from shared.vk.wire import form_value
from tests.support.communities import Community
from tests.support.vk_client import make_client
from tests.vk.recording_server import RecordingServer
from tools.vk_sandbox.control import SandboxControl

TOKEN = "vk1.a.request-shape-token-0123456789abcdefghij"


class TestFormValue:
    @pytest.mark.parametrize(("value", "expected"), [
        (True, "1"), (False, "0"), (-5, "-5"), (WallFilter.POSTPONED, "postponed"),
        (["photo-1_2", "doc3_4"], "photo-1_2,doc3_4"), ({"a": 1}, '{"a":1}'), ("текст", "текст"),
    ])
    def test_values_are_written_as_vk_reads_them(self, value: object, expected: str) -> None:
        """Flags as 1/0, enums by value, lists comma-separated, objects as JSON."""
        assert form_value(value) == expected


class TestVkClientRequests:
    async def test_calls_are_form_posts_with_version_and_token(self) -> None:
        """POST {api_url}/{method}, form-encoded, with v and access_token; None is left out."""
        server = RecordingServer()
        async with server.running() as api_url, make_client(api_url) as vk:
            await vk.call("wall.get", TOKEN, {"owner_id": -1, "filter": WallFilter.ALL,
                                              "extended": True, "fields": None})

        [request] = server.requests
        assert (request.http_method, request.path) == ("POST", "/method/wall.get")
        assert request.content_type == "application/x-www-form-urlencoded"
        assert request.form == {"owner_id": "-1", "filter": "all", "extended": "1",
                                "v": "5.199", "access_token": TOKEN}

    async def test_from_settings_takes_every_vk_setting(self, sandbox: SandboxControl,
                                                        community: Community) -> None:
        """URL, version, timeout, per-kind rates and attempts come from Settings."""
        settings = Settings(vk_api_url=sandbox.api_url, vk_api_version="5.199",
                            vk_timeout_seconds=1.5, vk_user_rps=2, vk_group_rps=10,
                            vk_max_attempts=2)

        async with VkClient.from_settings(settings) as vk:
            assert (vk.api_url, vk.api_version) == (sandbox.api_url, "5.199")
            assert vk.timeout.total == 1.5
            assert vk.limits.for_kind(TokenKind.USER) == RateLimit.per_second(2)
            assert vk.limits.for_kind(TokenKind.COMMUNITY) == RateLimit.per_second(10)
            assert vk.max_attempts == 2
            page = await vk.wall_get(community.token, community.owner_id)

        assert page.count == 0

    async def test_a_session_it_created_is_closed_with_it(self) -> None:
        """Used as a context manager, the client closes the session it opened."""
        server = RecordingServer()
        async with server.running() as api_url:
            vk = make_client(api_url)
            async with vk:
                assert vk.session is None
                await vk.call("wall.get", TOKEN)
                session = vk.session
            assert session is not None
            assert session.closed

    async def test_a_session_passed_in_is_left_open(self) -> None:
        """A shared session stays the caller's to close."""
        server = RecordingServer()
        async with server.running() as api_url, aiohttp.ClientSession() as session:
            async with VkClient(api_url, session=session) as vk:
                await vk.call("wall.get", TOKEN)
            assert not session.closed
            assert len(server.requests) == 1

    async def test_a_registry_passed_in_is_the_one_used(self) -> None:
        """Limiters live in the registry given (even an empty one), not the process-wide one."""
        registry = RateLimiterRegistry()
        server = RecordingServer()
        async with server.running() as api_url, VkClient(api_url,
                                                         rate_limiters=registry) as vk:
            before = len(PROCESS_RATE_LIMITERS)
            await vk.call("wall.get", TOKEN)

        assert len(registry) == 1
        assert len(PROCESS_RATE_LIMITERS) == before

    async def test_a_closed_client_refuses_calls(self) -> None:
        """Calls after close() fail loudly instead of quietly opening a new session."""
        vk = make_client("http://127.0.0.1:9/method")
        await vk.close()
        with pytest.raises(RuntimeError, match="closed"):
            await vk.call("wall.get", TOKEN)

    def test_repr_shows_where_not_who(self) -> None:
        """The repr names the endpoint and version, nothing secret."""
        assert repr(VkClient("https://api.vk.com/method/")) == (
            "VkClient(api_url='https://api.vk.com/method', api_version='5.199')")
