"""Which failures the client repeats, against the VK sandbox with injected faults."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import pytest
from structlog.testing import capture_logs

from shared.retry import AttemptBudget
from shared.vk.client import VkClient
from shared.vk.errors import (
    VkAccessDenied,
    VkAuthError,
    VkError,
    VkFloodControl,
    VkGroupAuthError,
    VkHttpError,
    VkInternalError,
    VkNetworkError,
    VkTooManyRequests,
    VkUnknownOutcome,
)
from shared.vk.models import WallFilter
from shared.vk.tokens import TokenKind
from tests.support.communities import Community
from tests.support.pauses import RecordedPauses
from tests.support.vk_client import FAST_BACKOFF, closed_port_url, make_client
from tools.vk_sandbox.control import SandboxControl


def retry_events(logs: Sequence[Mapping[str, Any]]) -> list[tuple[str, int | None, int]]:
    return [(entry["method"], entry["code"], entry["attempt"]) for entry in logs
            if entry["event"] == "vk_call_retry"]


class TestVkClientRetries:
    @pytest.mark.parametrize(("code", "error"), [(6, VkTooManyRequests), (10, VkInternalError)])
    async def test_transient_vk_errors_are_retried(self, sandbox: SandboxControl, vk: VkClient,
                                                   community: Community, code: int,
                                                   error: type[VkError]) -> None:
        """Two injected 6s (or 10s) are retried, each retry logged; the third call succeeds."""
        await sandbox.create_post(community.group_id, "hello")
        await sandbox.inject_fault("error", method="wall.get", code=code, count=2)

        with capture_logs() as logs:
            page = await vk.wall_get(community.token, community.owner_id)

        assert [post.text for post in page.items] == ["hello"]
        calls = await sandbox.calls("wall.get")
        assert [call["error_code"] for call in calls] == [code, code, None]
        assert retry_events(logs) == [("wall.get", code, 1), ("wall.get", code, 2)]
        assert all(entry["error"] == error.__name__ for entry in logs
                   if entry["event"] == "vk_call_retry")
        assert community.token not in repr(logs)

    async def test_server_errors_are_retried(self, sandbox: SandboxControl, vk: VkClient,
                                             community: Community) -> None:
        """HTTP 503 (a non-JSON page) is transient: retried until VK answers."""
        await sandbox.inject_fault("http_status", method="wall.get", status=503, count=2)

        page = await vk.wall_get(community.token, community.owner_id)

        assert page.count == 0
        calls = await sandbox.calls("wall.get")
        assert [call["http_status"] for call in calls] == [503, 503, 200]

    async def test_malformed_json_is_retried(self, sandbox: SandboxControl, vk: VkClient,
                                             community: Community) -> None:
        """A body cut short is transient: retried."""
        await sandbox.inject_fault("malformed", method="wall.get", count=1)

        await vk.wall_get(community.token, community.owner_id)

        assert len(await sandbox.calls("wall.get")) == 2

    @pytest.mark.parametrize("scenario", ["invalid token", "not an admin", "community token"])
    async def test_permanent_errors_are_raised_at_once(self, sandbox: SandboxControl,
                                                       vk: VkClient, community: Community,
                                                       scenario: str) -> None:
        """5 (bad token), 15 (access denied), 27 (group auth) are raised on the first try."""
        outsider = await sandbox.create_user()
        attempts: dict[str, tuple[Callable[[], Awaitable[object]], type[VkError]]] = {
            "invalid token": (lambda: vk.wall_get("vk1.a.never-issued-0123456789abcdef",
                                                  community.owner_id), VkAuthError),
            "not an admin": (lambda: vk.wall_get(outsider.token, community.owner_id,
                                                 WallFilter.POSTPONED), VkAccessDenied),
            "community token": (lambda: vk.wall_get(community.community_token, community.owner_id,
                                                    kind=TokenKind.COMMUNITY), VkGroupAuthError),
        }
        attempt, expected = attempts[scenario]

        with capture_logs() as logs, pytest.raises(expected) as raised:
            await attempt()

        assert raised.value.method == "wall.get"
        assert len(await sandbox.calls("wall.get")) == 1
        assert retry_events(logs) == []

    async def test_gives_up_after_max_attempts(self, sandbox: SandboxControl,
                                               community: Community) -> None:
        """A transient error that persists is raised after ``max_attempts`` calls."""
        await sandbox.inject_fault("error", method="wall.get", code=6, count=10)

        pauses = RecordedPauses()
        async with make_client(sandbox.api_url, max_attempts=3, sleep=pauses) as vk:
            with pytest.raises(VkTooManyRequests):
                await vk.wall_get(community.token, community.owner_id)

        assert len(await sandbox.calls("wall.get")) == 3
        assert pauses.seconds == [FAST_BACKOFF.delay(1), FAST_BACKOFF.delay(2)] == [0.01, 0.02]

    @pytest.mark.parametrize(("fault", "expected"), [
        ({"kind": "error", "code": 10}, VkInternalError),
        ({"kind": "http_status", "status": 502}, VkHttpError),
        ({"kind": "latency", "seconds": 0.5}, VkUnknownOutcome),
    ])
    async def test_wall_post_is_not_repeated_when_the_outcome_is_unknown(
            self, sandbox: SandboxControl, community: Community, fault: dict[str, Any],
            expected: type[VkError]) -> None:
        """Error 10, a 5xx or a timeout may hide a published post: raised, never repeated."""
        await sandbox.inject_fault(method="wall.post", **fault)

        async with make_client(sandbox.api_url, timeout_seconds=0.2) as vk:
            with pytest.raises(expected) as raised:
                await vk.wall_post(community.token, community.group_id, "once")

        assert raised.value.outcome_unknown
        assert len(await sandbox.calls("wall.post")) == 1

    async def test_wall_post_is_repeated_after_too_many_requests(
            self, sandbox: SandboxControl, vk: VkClient, community: Community) -> None:
        """Error 6 proves nothing was posted, so even wall.post is retried: one post results."""
        await sandbox.inject_fault("error", method="wall.post", code=6, count=1)

        post_id = await vk.wall_post(community.token, community.group_id, "once")

        assert [call["error_code"] for call in await sandbox.calls("wall.post")] == [6, None]
        wall = await sandbox.wall(community.group_id)
        assert [post["id"] for post in wall["published"]] == [post_id]

    async def test_a_budget_bounds_the_attempts_and_counts_them(
            self, sandbox: SandboxControl, community: Community) -> None:
        """With a budget of 5 of which 3 are spent, a client allowed 4 attempts makes 2
        (and records them); an empty budget makes none."""
        await sandbox.inject_fault("error", method="wall.post", code=9, count=100)
        budget = AttemptBudget(total=5, used=3)
        async with make_client(sandbox.api_url, max_attempts=4) as vk:
            with pytest.raises(VkFloodControl):
                await vk.wall_post(community.token, community.group_id, "once",
                                   budget=budget)
            assert (budget.used, budget.remaining) == (5, 0)
            with pytest.raises(ValueError, match="no attempt left"):
                await vk.wall_post(community.token, community.group_id, "once",
                                   budget=budget)
        assert len(await sandbox.calls("wall.post")) == 2

    async def test_refused_connections_are_retried_network_errors(self) -> None:
        """Nothing listening: the request never left, so it is retried, then raised as such."""
        async with make_client(closed_port_url(), max_attempts=3) as vk:
            with capture_logs() as logs, pytest.raises(VkNetworkError) as raised:
                await vk.wall_post("vk1.a.token-0123456789abcdef", 1, "text")

        assert not isinstance(raised.value, VkUnknownOutcome)
        assert not raised.value.outcome_unknown
        assert retry_events(logs) == [("wall.post", None, 1), ("wall.post", None, 2)]

    async def test_timeout_bounds_each_request(self, sandbox: SandboxControl,
                                               community: Community) -> None:
        """A slow VK is abandoned after the per-request timeout, on every attempt."""
        await sandbox.inject_fault("latency", method="wall.get", seconds=2.0)

        pauses = RecordedPauses()
        async with make_client(sandbox.api_url, timeout_seconds=0.2, max_attempts=2,
                               sleep=pauses) as vk:
            with capture_logs() as logs, pytest.raises(VkUnknownOutcome):
                await vk.wall_get(community.token, community.owner_id)

        # Both attempts were cut short (a 2-s answer would have succeeded), the first one
        # followed by exactly one backoff pause of the policy.
        assert len(await sandbox.calls("wall.get")) == 2
        assert [(entry["attempt"], entry["error"]) for entry in logs
                if entry["event"] == "vk_call_retry"] == [(1, "VkUnknownOutcome")]
        assert pauses.seconds == [FAST_BACKOFF.delay(1)]
