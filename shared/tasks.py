"""Stopping background tasks: the one cancellation policy of every service.

:func:`cancel_and_wait` cancels tasks and waits until they have ended, cancelling again
every :data:`RECANCEL_SECONDS`. Once is not always enough on Python 3.11: PyMongo sends
each command through ``asyncio.wait_for``, which swallows a cancellation arriving just as
the write completes (CPython gh-86296, fixed in 3.12); the task then carries on as if it
had never been cancelled, and a stop that cancels once waits forever. Any task that talks
to MongoDB can be hit (change-stream followers were, in the notifier's tests: see
``shared/change_stream.py`` for the measurements), so every stop goes through here.
"""

from __future__ import annotations

import asyncio
from typing import Any

# A cancellation Python 3.11 lost is repeated this often.
RECANCEL_SECONDS = 0.5


async def cancel_and_wait(*tasks: asyncio.Task[Any]) -> None:
    """Cancel ``tasks`` until every one has ended. What they raised instead of the
    cancellation is retrieved, not raised: a stop never fails on its tasks' errors."""
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=RECANCEL_SECONDS)
    for task in tasks:
        if not task.cancelled():
            task.exception()  # retrieved, so asyncio does not log it as never retrieved
