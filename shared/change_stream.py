"""Following a MongoDB change stream until cancelled: the one loop of every follower.

:func:`follow_changes` opens the stream, lets its consumer catch up (``opened``: read
what the stream may have missed, since it reports only what happens after it opened),
hands it every change in order, and re-opens the stream after any loss: a failure
(mongod restarted, a failover the driver could not resume over, the network) or the
end of the stream (an ``invalidate``: the collection was dropped or renamed). What to
log and how long to wait before re-opening is the consumer's (``lost``). Resuming
within one stream is the driver's: it resumes from its resume token once per error.

Stopping — one policy: :func:`stop_following`, which cancels the task that runs
:func:`follow_changes`, and cancels it again every ``shared.tasks.RECANCEL_SECONDS`` until
it has ended (:func:`shared.tasks.cancel_and_wait`, which every service's stop uses).
Why cancellation, and why again:

* A cancelled ``getMore`` returns at once, even one the server holds open waiting for a
  change. PyMongo's async driver (4.12+, PYTHON-4745) races each reply's read against
  cancellation and, when cancelled, drops that connection and closes the stream's
  cursor (``killCursors`` on another pooled connection). Measured with PyMongo 4.20.1
  and mongod 6.0 (asyncio and uvloop, 80 cancellations each, ``maxAwaitTimeMS`` 1 s and
  60 s): each returned within 13 ms. A stop flag, instead, is seen only when the
  ``getMore`` returns (up to ``maxAwaitTimeMS``), and closing the client does not
  interrupt a ``getMore`` either (with a 60-s await the follower was still running 30 s
  after ``client.close()``).
* A cancellation can be lost, though: PyMongo writes each command through
  ``asyncio.wait_for``, which on Python 3.11 swallows a cancellation that arrives as the
  write completes (CPython gh-86296, fixed in 3.12). The follower then carries on with
  its next ``getMore`` as if never cancelled, and a stop that cancels once waits
  forever. The notifier's tests hit this (the dashboard journal's follower, cancelled
  within milliseconds of its start while a command was being sent, went on to its
  next ``getMore``: in five runs of start-stop cycles, the 2nd to 14th stop hung);
  cancelling again ends it (80 cycles, none hung).
* Against a mongod that stopped answering (SIGSTOP) a single cancellation took 10 s,
  ``socketTimeoutMS`` (the ``killCursors`` reply); the repeated one cuts that short
  (:func:`stop_following` returned after 0.67 s; the server reaps the cursor when it
  times out, 10 min idle by default). Against a killed mongod a cancellation returned
  at once.

``tests/shared/test_change_stream.py`` stops followers parked in an idle ``getMore`` and
followers just started (that test fails when the cancellation is not repeated);
``tests/update_notifier/test_service.py`` stops the notifier with both its followers
parked.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol

from pymongo.asynchronous.change_stream import AsyncChangeStream

from shared.mongo import Document
from shared.tasks import cancel_and_wait

OpenStream = Callable[[], Awaitable[AsyncChangeStream[Document]]]


class ChangeStreamEnded(Exception):
    """The server ended the stream (``invalidate``: the collection was dropped or renamed)."""


class ChangeConsumer(Protocol):
    """What :func:`follow_changes` calls; each follower's own policy (catch-up, logging, waits)."""

    async def opened(self) -> None:
        """The stream is open: read what it may have missed (it reports everything after)."""

    def changed(self, change: Document) -> None:
        """One change, in the stream's order; must not block."""

    def closed(self) -> None:
        """The stream is closed, whatever the reason (a loss, or the follower cancelled)."""

    async def lost(self, error: Exception, failures: int) -> None:
        """The stream failed or ended (:class:`ChangeStreamEnded`): log it and wait before
        it is re-opened. ``failures`` counts the losses since the consumer last caught up."""


async def follow_changes(open_stream: OpenStream, consumer: ChangeConsumer) -> None:
    """Feed ``consumer`` from the stream ``open_stream`` opens, re-opening it; until cancelled."""
    failures = 0
    while True:
        try:
            try:
                async with await open_stream() as stream:
                    await consumer.opened()
                    failures = 0
                    async for change in stream:
                        consumer.changed(change)
                raise ChangeStreamEnded("change stream ended")
            finally:
                consumer.closed()
        except Exception as error:  # cancellation is not an Exception: it ends the loop
            failures += 1
            await consumer.lost(error, failures)


async def stop_following(*tasks: asyncio.Task[None]) -> None:
    """Stop the followers' tasks (:func:`shared.tasks.cancel_and_wait`, the policy above);
    raise what one of them failed with, if anything but the cancellation."""
    await cancel_and_wait(*tasks)
    for task in tasks:
        if not task.cancelled():
            task.result()
