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
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog

from services.update_notifier.head import HeadWindow
from services.update_notifier.update_log import Entry, UpdateLog
from shared.logging import redact_text
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
    last = after  # the last seq given to on_entry
    failures = 0
    while True:
        try:
            async with await update_log.watch_changes() as stream:
                # The catch-up reads from where the window must start (or from the last
                # entry given to on_entry, if that is older).
                latest = await update_log.latest_seq()
                position = min(last, max(0, latest - head.capacity))
                head.restart(position)
                while True:  # what was appended while no stream was open
                    entries = await update_log.entries_after(position, CATCH_UP_PAGE)
                    for entry in entries:
                        head.add(entry)
                        if entry.seq > last:
                            on_entry(entry)
                            last = entry.seq
                        position = entry.seq
                    if len(entries) < CATCH_UP_PAGE:
                        break
                head.caught_up(latest)
                log.info("update_log_following", after=last)
                failures = 0
                async for change in stream:
                    if change["operationType"] == "delete":
                        head.remove(int(change["documentKey"]["_id"]))
                        continue
                    entry = Entry.from_document(change["fullDocument"])
                    head.add(entry)
                    if entry.seq > last:
                        on_entry(entry)
                        last = entry.seq
            # The stream was invalidated (collection dropped or renamed): open another.
            raise RuntimeError("change stream ended")
        except asyncio.CancelledError:
            head.lost()
            raise
        except Exception as exc:
            head.lost()
            failures += 1
            delay = backoff_seconds(failures)
            log.warning("update_log_follow_failed", after=last, retry_in_seconds=round(delay, 3),
                        error=redact_text(f"{type(exc).__name__}: {exc}"))
            await asyncio.sleep(delay)
