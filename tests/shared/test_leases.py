"""The heartbeat every lease holder runs (shared/leases.py)."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from shared.leases import keep_alive, renew_interval


class ScriptedRenewals:
    """A renewal that answers from a script: True (renewed), False (lost) or an error."""

    def __init__(self, *answers: bool | Exception) -> None:
        self.answers = list(answers)
        self.calls = 0

    async def __call__(self) -> bool:
        self.calls += 1
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


class TestRenewInterval:
    @pytest.mark.parametrize(("lease", "interval"), [(10.0, 10 / 3), (3.0, 1.0), (0.3, 0.1)])
    def test_a_third_of_the_lease(self, lease: float, interval: float) -> None:
        """Three renewals per lease: one lost renewal never loses the lease."""
        assert renew_interval(lease) == pytest.approx(interval)


class TestKeepAlive:
    async def test_renews_until_the_lease_is_found_taken(self) -> None:
        """Renewals go on while they succeed; keep_alive returns at the first lost one."""
        renew = ScriptedRenewals(True, True, True, False)
        await keep_alive(renew, lease_seconds=0.03)
        assert renew.calls == 4

    async def test_transient_failures_are_retried_not_fatal(self) -> None:
        """A renewal that raises (no primary during a failover) is logged and tried
        again; the heartbeat keeps running until the lease is really lost."""
        renew = ScriptedRenewals(ConnectionError("no primary"), ConnectionError("no primary"),
                                 True, False)
        with capture_logs() as logs:
            await keep_alive(renew, lease_seconds=0.03, retry_seconds=0.001)
        assert renew.calls == 4
        failures = [entry for entry in logs if entry["event"] == "lease_renew_failed"]
        assert [entry["error"] for entry in failures] == ["ConnectionError: no primary"] * 2
