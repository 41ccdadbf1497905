"""The head of the update log in memory, so that cursor polls near it read nothing from MongoDB.

One :class:`HeadWindow` per process, fed by the log tailer
(:func:`~services.update_notifier.tailer.follow_log`), which already follows the log
for the SSE streams: every entry in seq order, once each, and every deletion (TTL
expiry, an operator) its change stream reports. The window keeps the project id of
each of the latest ``capacity`` seqs, or a hole where there is no entry: it knows
every seq in ``(base, tail]``. ``tail`` is the newest seq this process has followed.

Why an answer from the window equals the log's (:func:`~.polling.poll_after`):

* every seq in ``(base, tail]`` is known, and the log allocates seqs in commit order
  without holes, so "the entries after ``after`` up to ``tail``" are exactly those
  the log would return, had it been read when the tailer reached ``tail``;
* a cursor outside ``[base, tail]`` is not answered here: older than the window, or
  ahead of this process's tail (another replica issued it after following entries
  this one has not seen yet) — the log answers, so a cursor never goes backwards and
  is never told "nothing new" about entries it is ahead of;
* a hole inside the answer (an expired or removed entry) is not answered either:
  whether that means ``resync`` depends on the whole retained log;
* the window answers only while the tailer's change stream is open and caught up
  (``live``). At start-up and after the stream is lost it is rebuilt from the log
  (deletions may have been missed meanwhile) and answers again once caught up.

So the window may be a few milliseconds behind the log (the change stream's lag): its
answer is the one the log gave a moment earlier, and the next poll carries on from
it. Resetting the log means dropping the collection or the database, which ends the
change stream and so rebuilds the window; rewinding the seq counter in place is not
supported (nor is it by the SSE streams).
"""

from __future__ import annotations

from dataclasses import dataclass

from services.update_notifier.cursor import first_appearances, head_span
from services.update_notifier.metrics import CURSOR_POLLS
from services.update_notifier.update_log import Entry

DEFAULT_HEAD_ENTRIES = 4096
_ANSWERED_HERE = CURSOR_POLLS.labels(source="head")
_LEFT_TO_THE_LOG = CURSOR_POLLS.labels(source="log")


@dataclass(frozen=True, slots=True)
class HeadAnswer:
    """The projects after the cursor (first appearance order) and the next cursor."""

    project_ids: list[str]
    cursor: int


class HeadWindow:
    """The latest ``capacity`` seqs of the update log: a ring of project ids (None: hole)."""

    __slots__ = ("_ring", "base", "capacity", "live", "tail")

    def __init__(self, capacity: int = DEFAULT_HEAD_ENTRIES) -> None:
        if capacity < 1:
            raise ValueError(f"the head holds at least one entry, got {capacity}")
        self.capacity = capacity
        self._ring: list[str | None] = [None] * capacity
        self.base = 0  # every seq in (base, tail] is known: an entry or a hole
        self.tail = 0
        self.live = False  # caught up and following: answers are the log's

    def restart(self, base: int) -> None:
        """Forget everything and know nothing after ``base``; not live until :meth:`caught_up`."""
        self.live = False
        self.base = self.tail = base

    def add(self, entry: Entry) -> None:
        """An entry the tailer delivered; seqs at or below the tail were seen already."""
        if entry.seq > self.tail:
            self._extend(entry.seq - 1)
            self._ring[entry.seq % self.capacity] = entry.project_id
            self.tail = entry.seq
            self.base = max(self.base, self.tail - self.capacity)

    def remove(self, seq: int) -> None:
        """The entry ``seq`` was deleted (TTL, an operator): a hole from now on."""
        if self.base < seq <= self.tail:
            self._ring[seq % self.capacity] = None

    def caught_up(self, latest: int) -> None:
        """The catch-up read is done with the stream open: answer from now on.

        ``latest`` is the log's last seq, read after the stream was opened and before
        the catch-up read: every seq up to it that the read did not return was deleted.
        """
        self._extend(latest)
        self.live = True

    def lost(self) -> None:
        """The change stream is gone: deletions may go unseen, so answer nothing."""
        self.live = False

    def answer(self, after: int, limit: int) -> HeadAnswer | None:
        """The log's answer to a reader at ``after`` (at most ``limit`` entries), or None."""
        if self.live:
            span = head_span(after, base=self.base, tail=self.tail, limit=limit)
            if span is not None:
                ring, capacity = self._ring, self.capacity
                project_ids = first_appearances(ring[seq % capacity] for seq in span)
                if project_ids is not None:
                    _ANSWERED_HERE.inc()
                    return HeadAnswer(project_ids, span[-1] if span else after)
        _LEFT_TO_THE_LOG.inc()
        return None

    def _extend(self, seq: int) -> None:
        """Holes for the seqs after the tail up to ``seq`` (only the last ``capacity`` matter)."""
        for hole in range(max(self.tail + 1, seq - self.capacity + 1), seq + 1):
            self._ring[hole % self.capacity] = None
        if seq > self.tail:
            self.tail = seq
            self.base = max(self.base, self.tail - self.capacity)
