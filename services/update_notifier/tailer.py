"""Follow the update log live: one MongoDB change stream per process, never missing an entry.

The stream is opened *before* the log is queried for entries after the last one
seen, so an entry lands in the query, the stream, or both (and duplicates are
dropped by seq). When the stream dies (mongod restarted, failover, network), it is
re-opened the same way: the position is a seq, not a resume token, so it survives
even the oplog rolling over.

The follower also keeps the process's :class:`~services.update_notifier.head.HeadWindow`:
on every (re-)open the window is rebuilt from the log (the latest ``capacity`` seqs,
read in the same catch-up), it gets every entry and every deletion the stream
reports, and it answers polls only while the stream is open and caught up.

The stream is followed by :func:`shared.change_stream.follow_changes`: stop
:func:`follow_log` by cancelling it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog

from services.update_notifier.head import HeadWindow
from services.update_notifier.update_log import Entry, UpdateLog
from shared.change_stream import follow_changes
from shared.logging import redact_text
from shared.mongo import Document
from shared.retry import backoff_seconds

log = structlog.get_logger(__name__)

CATCH_UP_PAGE = 1000


async def follow_log(update_log: UpdateLog, on_entry: Callable[[Entry], None], *, after: int,
                     head: HeadWindow) -> None:
    """Call ``on_entry`` for every entry with seq > ``after``, once each, in seq order; forever.

    ``on_entry`` must not block (it runs between reads of the change stream).
    ``head`` is kept as described in the module docstring; it has every entry before
    ``on_entry`` is called with it.
    Runs until cancelled; storage failures are retried with backoff.
    """
    await follow_changes(update_log.watch_changes, LogFollower(update_log, on_entry, after, head))


class LogFollower:
    """The consumer of the log's change stream (see :func:`follow_log`)."""

    def __init__(self, update_log: UpdateLog, on_entry: Callable[[Entry], None], after: int,
                 head: HeadWindow) -> None:
        self._update_log = update_log
        self._on_entry = on_entry
        self._head = head
        self.last = after  # the last seq given to on_entry

    async def opened(self) -> None:
        """Catch up: what was appended while no stream was open."""
        update_log, head = self._update_log, self._head
        # The catch-up reads from where the window must start (or from the last entry
        # given to on_entry, if that is older).
        latest = await update_log.latest_seq()
        position = min(self.last, max(0, latest - head.capacity))
        head.restart(position)
        while True:
            entries = await update_log.entries_after(position, CATCH_UP_PAGE)
            for entry in entries:
                self._deliver(entry)
                position = entry.seq
            if len(entries) < CATCH_UP_PAGE:
                break
        head.caught_up(latest)
        log.info("update_log_following", after=self.last)

    def changed(self, change: Document) -> None:
        if change["operationType"] == "delete":
            self._head.remove(int(change["documentKey"]["_id"]))
        else:
            self._deliver(Entry.from_document(change["fullDocument"]))

    def closed(self) -> None:
        self._head.lost()

    async def lost(self, error: Exception, failures: int) -> None:
        delay = backoff_seconds(failures)
        log.warning("update_log_follow_failed", after=self.last, retry_in_seconds=round(delay, 3),
                    error=redact_text(f"{type(error).__name__}: {error}"))
        await asyncio.sleep(delay)

    def _deliver(self, entry: Entry) -> None:
        self._head.add(entry)
        if entry.seq > self.last:
            self._on_entry(entry)
            self.last = entry.seq
