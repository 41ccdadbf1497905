"""MongoDB leases and the heartbeat every holder runs (shared/leases.py)."""

from __future__ import annotations

import pytest
from pymongo.asynchronous.database import AsyncDatabase
from structlog.testing import capture_logs

from shared.leases import MongoLeases, keep_alive, renew_interval
from shared.mongo import Document


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


class TestMongoLeases:
    async def test_a_lease_under_a_prefix_taken_released_and_lost(
            self, db: AsyncDatabase[Document]) -> None:
        """The fields live under the prefix; a held lease refuses others; a release sets
        what it is given with it, only while held and where the document matches."""
        states = db["leases"]
        mine = MongoLeases(states, owner="a", lease_seconds=5, prefix="lease_")
        other = MongoLeases(states, owner="b", lease_seconds=5, prefix="lease_")
        assert await mine.take("k") is None  # no document, none created
        await states.insert_one({"_id": "k", "stage": 1, **mine.free})
        taken = await mine.take("k", where={"stage": 1})
        assert taken is not None
        lease, document = taken
        assert (document["lease_owner"], document["lease_token"]) == ("a", lease.token)
        assert (document["lease_until"] - mine.taken_at(document)).total_seconds() == 5
        assert await other.take("k") is None
        assert await mine.renew(lease)
        assert not await mine.release(lease, where={"stage": 2})
        assert await mine.release(lease, also_set={"stage": 2})
        assert await states.find_one({"_id": "k"}) == {
            "_id": "k", "stage": 2, "lease_owner": None, "lease_token": None,
            "lease_until": None}
        assert not await mine.renew(lease)  # released: no longer ours

    async def test_create_makes_a_missing_document_and_takes_it(
            self, db: AsyncDatabase[Document]) -> None:
        """``create``: the document is created free, then taken (once: others wait)."""
        leases = MongoLeases(db["leases"], owner="a", lease_seconds=5)
        taken = await leases.take("p", create=True)
        assert taken is not None and taken[1]["owner"] == "a"
        other = MongoLeases(db["leases"], owner="b", lease_seconds=5)
        assert await other.take("p", create=True) is None
