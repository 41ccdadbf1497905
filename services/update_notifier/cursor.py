"""Cursor arithmetic over the update log: pure functions, no I/O.

A cursor names a position in the update log: "every entry up to and including
seq N has been seen". On the wire it is an opaque string, ``v1.<N>``, so the
format can change later without clients noticing. Seq 0 is the position before
the first entry ever.

The log has no holes by construction (a seq is allocated in the same
transaction that inserts its entry), except where old entries expired (TTL) or
were removed. So "entry N+1 is still there" is exactly what a reader at N needs
to be able to continue.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from enum import StrEnum

CURSOR_VERSION = "v1"
# Up to 18 digits keeps every seq inside a signed 64-bit integer (BSON long).
_CURSOR = re.compile(r"v1\.(0|[1-9][0-9]{0,17})")


class InvalidCursor(ValueError):
    """The text is not a cursor this service issued; the message is one line."""


class CursorVerdict(StrEnum):
    """What a reader at a cursor can do."""

    OK = "ok"  # every entry after the cursor is still in the log
    RESYNC = "resync"  # entries after it have expired: the reader must reload everything
    INVALID = "invalid"  # ahead of the log: not issued by this log (or the log was reset)


def format_cursor(seq: int) -> str:
    if seq < 0:
        raise ValueError(f"a seq is never negative, got {seq}")
    return f"{CURSOR_VERSION}.{seq}"


def parse_cursor(text: str) -> int:
    """The seq a cursor string names; :class:`InvalidCursor` for anything else."""
    match = _CURSOR.fullmatch(text)
    if match is None:
        raise InvalidCursor("cursor is malformed")
    return int(match.group(1))


def classify(after: int, *, oldest: int | None, latest: int) -> CursorVerdict:
    """Judge a reader positioned at ``after`` against the retained log.

    ``oldest`` is the smallest seq still in the log (``None`` if it is empty) and
    ``latest`` the last seq ever allocated.
    """
    if after > latest:
        return CursorVerdict.INVALID
    if after == latest:
        return CursorVerdict.OK
    # Something was appended after the cursor; the next entry must still be there.
    if oldest is None or oldest > after + 1:
        return CursorVerdict.RESYNC
    return CursorVerdict.OK


def has_gap(after: int, seqs: Sequence[int]) -> bool:
    """True if ``seqs`` (ascending, read after ``after``) do not continue it without a hole.

    Belt and braces next to :func:`classify`: TTL expiry is not strictly in seq
    order when writers' clocks disagree, and an operator may delete entries.
    """
    expected = after + 1
    for seq in seqs:
        if seq != expected:
            return True
        expected += 1
    return False


def legacy_range(previous: int | None, latest: int) -> tuple[int, int] | None:
    """Entries a legacy ``getUpdates`` call reports: seq in ``(low, high]``, or None.

    ``previous`` is the shared legacy cursor before this call swapped it to
    ``latest``; ``None`` means no call ever happened, and then the call reports
    everything still retained (a spurious reload is harmless, a missed one is not).
    It can be ahead of ``latest`` when another replica swapped it meanwhile.
    """
    low = previous if previous is not None else 0
    if latest <= low:
        return None
    return low, latest


def head_span(after: int, *, base: int, tail: int, limit: int) -> range | None:
    """The seqs a poll at ``after`` reads from an in-memory head, or None if it cannot answer.

    The head knows every seq in ``(base, tail]``: each is an entry or a hole. It answers a
    reader at ``after`` when ``base <= after <= tail``: the reader then gets the first
    ``limit`` seqs after its cursor, up to ``tail`` (an empty range at the tail). A cursor
    before ``base`` (older than the head) or after ``tail`` (ahead of what this process has
    followed, e.g. issued by another replica) is for the log in MongoDB to answer.
    """
    if limit < 1:
        raise ValueError(f"a poll reads at least one entry, got limit {limit}")
    if not base <= after <= tail:
        return None
    return range(after + 1, min(tail, after + limit) + 1)


def first_appearances(project_ids: Iterable[str | None]) -> list[str] | None:
    """The distinct project ids in order of first appearance; None at the first hole (None).

    A hole (an expired or removed entry) inside what a reader asks for is not the head's
    to judge (resync or not depends on the whole retained log): the log answers.
    """
    seen: dict[str, None] = {}
    for project_id in project_ids:
        if project_id is None:
            return None
        seen[project_id] = None
    return list(seen)
