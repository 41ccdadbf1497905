"""A clock that moves only when a test moves it, with a ``sleep`` that waits on it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

# Real seconds after which work that neither finishes nor sleeps counts as deadlocked,
# so a broken limiter fails its test instead of hanging it.
STUCK_AFTER_SECONDS = 2.0


class ManualClock:
    """``clock()`` and ``sleep()`` for code under test; ``advance`` wakes due sleepers."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []
        self._changed = asyncio.Event()

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        wake: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (self.now + seconds, wake)
        self._sleepers.append(entry)
        self._changed.set()
        try:
            await wake
        finally:
            self._sleepers.remove(entry)

    @property
    def sleeping(self) -> int:
        return sum(1 for _, wake in self._sleepers if not wake.done())

    async def wait_for_sleeper(self) -> None:
        """Return once some task sleeps on this clock."""
        while not self.sleeping:
            self._changed.clear()
            await self._changed.wait()

    def advance_to_next_wakeup(self) -> None:
        """Move time to the earliest pending wake-up and wake everyone due by then."""
        pending = [(deadline, wake) for deadline, wake in self._sleepers if not wake.done()]
        if not pending:
            raise AssertionError("nobody is sleeping")
        self.now = max(self.now, min(deadline for deadline, _ in pending))
        for deadline, wake in pending:
            if deadline <= self.now:
                wake.set_result(None)

    async def run_until_complete(self, work: Awaitable[object]) -> None:
        """Drive ``work`` to completion, jumping time forward whenever it only sleeps.

        Time moves only while some task sleeps on this clock; the next wake-up is
        taken as soon as a sleeper is registered, which is when the code under test
        has nothing else it can do before time passes.
        """
        finished = asyncio.ensure_future(work)
        while not finished.done():
            sleeper = asyncio.ensure_future(self.wait_for_sleeper())
            await asyncio.wait({finished, sleeper}, timeout=STUCK_AFTER_SECONDS,
                               return_when=asyncio.FIRST_COMPLETED)
            sleeper.cancel()
            if not finished.done() and not self.sleeping:
                finished.cancel()
                raise AssertionError("stuck: the work neither finishes nor sleeps")
            if self.sleeping and not finished.done():
                self.advance_to_next_wakeup()
        finished.result()

