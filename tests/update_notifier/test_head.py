"""The in-memory head of the update log: on its own, and against the log it follows.

The rule checked throughout: where the head answers, it answers what the log
(:func:`poll_after` without a head: three MongoDB reads) answers; where it cannot
(a cursor older than it, ahead of its tail, a hole, a lost stream), it says so and
the log answers.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from structlog.testing import capture_logs

from services.update_notifier.head import HeadAnswer, HeadWindow
from services.update_notifier.polling import MAX_ENTRIES_PER_POLL, CursorAhead, Poll, poll_after
from services.update_notifier.tailer import follow_log
from services.update_notifier.update_log import Entry, UpdateLog
from shared.change_stream import stop_following
from shared.mongo import COUNTERS, PROJECT_UPDATES, Document, connect, ensure_indexes
from shared.settings import Settings
from tests.metrics import MetricsSince
from tests.update_notifier.conftest import update
from tests.waiting import eventually
from tools.mongod import mongo_url, start_mongod, stop_mongod

AHEAD = "cursor ahead of the log"
POLLS = "notifier_cursor_polls_total"


def answered(since: MetricsSince) -> tuple[float, float]:
    """Cursor polls answered from the head, and left to the log, since ``since`` began."""
    return since(POLLS, source="head"), since(POLLS, source="log")


async def until(condition: Callable[[], bool], what: str, timeout: float = 10) -> None:
    async def holds() -> bool:
        return condition()

    await eventually(holds, timeout=timeout, what=what)


def entry(seq: int, project_id: str) -> Entry:
    return Entry(seq, project_id, ("scheduled",))


def head_of(projects: list[str | None], capacity: int = 16) -> HeadWindow:
    """A caught-up head that followed seqs 1, 2, … with these projects (None: no entry)."""
    head = HeadWindow(capacity)
    head.restart(0)
    for seq, project_id in enumerate(projects, start=1):
        if project_id is not None:
            head.add(entry(seq, project_id))
    head.caught_up(len(projects))
    return head


class TestHeadWindow:
    def test_a_new_window_answers_nothing(self) -> None:
        """Before the tailer has caught up, every poll goes to the log."""
        head, since = HeadWindow(8), MetricsSince()
        assert head.answer(0, 100) is None
        assert answered(since) == (0, 1)

    def test_answers_projects_in_first_appearance_order_and_the_tail_as_cursor(self) -> None:
        """As the log would: each project once, where it first appears after the cursor."""
        head, since = head_of(["p1", "p2", "p1", "p3", "p2"]), MetricsSince()
        assert head.answer(1, 100) == HeadAnswer(["p2", "p1", "p3"], 5)
        assert head.answer(4, 100) == HeadAnswer(["p2"], 5)
        assert answered(since) == (2, 0)

    def test_at_the_tail_the_answer_is_empty_and_keeps_the_cursor(self) -> None:
        """Nothing new since the cursor: no projects, same cursor."""
        assert head_of(["p1", "p2"]).answer(2, 100) == HeadAnswer([], 2)
        assert head_of([]).answer(0, 100) == HeadAnswer([], 0)

    def test_the_limit_caps_an_answer_like_the_log_does(self) -> None:
        """At most ``limit`` entries; the cursor stops at the last one reported."""
        head = head_of(["p1", "p2", "p3", "p4"])
        assert head.answer(0, 2) == HeadAnswer(["p1", "p2"], 2)
        assert head.answer(2, 2) == HeadAnswer(["p3", "p4"], 4)

    def test_keeps_only_the_latest_capacity_seqs(self) -> None:
        """Older cursors than the window are left to the log."""
        head = head_of([f"p{seq}" for seq in range(1, 11)], capacity=4)
        assert (head.base, head.tail) == (6, 10)
        assert head.answer(5, 100) is None
        assert head.answer(6, 100) == HeadAnswer(["p7", "p8", "p9", "p10"], 10)

    def test_a_cursor_ahead_of_the_tail_is_not_answered(self) -> None:
        """A cursor from a replica that followed further must not get "nothing new"."""
        head, since = head_of(["p1", "p2"]), MetricsSince()
        assert head.answer(3, 100) is None
        assert answered(since) == (0, 1)

    def test_a_seq_that_never_arrived_is_a_hole_left_to_the_log(self) -> None:
        """A skipped seq (expired before the catch-up read): spans over it are not answered."""
        head = head_of(["p1", None, "p3", "p4"])
        assert head.answer(0, 100) is None
        assert head.answer(1, 100) is None
        assert head.answer(2, 100) == HeadAnswer(["p3", "p4"], 4)
        assert head.answer(0, 1) == HeadAnswer(["p1"], 1)  # the hole is beyond the limit

    def test_a_removed_entry_becomes_a_hole(self) -> None:
        """TTL expiry or an operator's delete reach the head as holes."""
        head = head_of(["p1", "p2", "p3"])
        head.remove(2)
        assert head.answer(1, 100) is None
        assert head.answer(2, 100) == HeadAnswer(["p3"], 3)
        head.remove(99)  # not (yet) followed: nothing to forget
        assert head.tail == 3

    def test_the_latest_seq_at_catch_up_extends_the_tail_with_holes(self) -> None:
        """Entries up to the log's latest seq that the catch-up did not return were deleted."""
        head = HeadWindow(16)
        head.restart(0)
        head.add(entry(1, "p1"))
        head.caught_up(3)
        assert head.tail == 3
        assert head.answer(3, 100) == HeadAnswer([], 3)  # the log: at the latest, nothing new
        assert head.answer(1, 100) is None  # the log decides: resync

    def test_entries_it_already_has_are_ignored(self) -> None:
        """The catch-up read and the stream overlap; the stream's copies change nothing."""
        head = head_of(["p1", "p2"])
        head.add(entry(2, "other"))
        head.add(entry(1, "other"))
        assert head.answer(0, 100) == HeadAnswer(["p1", "p2"], 2)

    def test_a_lost_stream_or_a_restart_stops_the_answers(self) -> None:
        """Deletions may go unseen without the stream: nothing is answered until caught up."""
        head = head_of(["p1", "p2"])
        head.lost()
        assert head.answer(1, 100) is None
        head.restart(2)
        assert (head.live, head.base, head.tail) == (False, 2, 2)
        assert head.answer(2, 100) is None
        head.caught_up(2)
        assert head.answer(2, 100) == HeadAnswer([], 2)

    def test_refuses_an_empty_window(self) -> None:
        """A window of no entries could answer nothing."""
        with pytest.raises(ValueError):
            HeadWindow(0)


# --- against the log ---------------------------------------------------------------------


async def from_log(update_log: UpdateLog, after: int, limit: int) -> Poll | str:
    """The log's own answer (no head)."""
    try:
        return await poll_after(update_log, after, limit)
    except CursorAhead:
        return AHEAD


def as_poll(answer: HeadAnswer | None) -> Poll | None:
    return None if answer is None else Poll(answer.project_ids, answer.cursor)


async def check_agreement(update_log: UpdateLog, head: HeadWindow, cursors: range) -> set[int]:
    """Every answer of the head equals the log's, whatever the limit; return the cursors
    the head answered with the limit of the HTTP API."""
    answered = set()
    for limit in (1, 3, MAX_ENTRIES_PER_POLL):
        for after in cursors:
            near = as_poll(head.answer(after, limit))
            if near is not None:
                assert near == await from_log(update_log, after, limit), (after, limit)
                if limit == MAX_ENTRIES_PER_POLL:
                    answered.add(after)
            # With the head, poll_after gives the log's answer whoever answers.
            try:
                combined: Poll | str = await poll_after(update_log, after, limit, head=head)
            except CursorAhead:
                combined = AHEAD
            assert combined == await from_log(update_log, after, limit), (after, limit)
    return answered


class Follower:
    """:func:`follow_log` with a head, in a task; ``announced`` is what SSE would get."""

    def __init__(self, update_log: UpdateLog, head: HeadWindow, after: int) -> None:
        self.head = head
        self.announced: list[int] = []
        self._task = asyncio.create_task(
            follow_log(update_log, lambda entry: self.announced.append(entry.seq), after=after,
                       head=head))

    async def caught_up(self, tail: int, timeout: float = 10) -> None:
        async def there() -> bool:
            return self.head.live and self.head.tail >= tail

        await eventually(there, timeout=timeout, what=f"the head live at {tail}")

    async def stop(self) -> None:
        await stop_following(self._task)


@pytest.fixture
async def follow() -> AsyncIterator[list[Follower]]:
    followers: list[Follower] = []
    yield followers
    for follower in followers:
        await follower.stop()


async def log_with(db: AsyncDatabase[Document], projects: list[str]) -> UpdateLog:
    update_log = UpdateLog(db)
    await update_log.prepare()
    for project_id in projects:
        await update_log.append(update(project_id))
    return update_log


class TestHeadAgainstTheLog:
    async def test_answers_every_cursor_inside_it_as_the_log_does(
        self, db: AsyncDatabase[Document], follow: list[Follower]
    ) -> None:
        """Seeded from the log at start, then fed by the stream: inside the window the head
        answers exactly as the log (projects, cursor, limit); outside it, not at all."""
        update_log = await log_with(db, [f"p{seq % 7}" for seq in range(1, 31)])
        head = HeadWindow(16)
        follow.append(follower := Follower(update_log, head, after=30))
        await follower.caught_up(30)
        assert (head.base, head.tail) == (14, 30)  # the latest 16 seqs, read at start
        assert follower.announced == []  # seeding the head announces nothing to streams
        assert await check_agreement(update_log, head, range(0, 33)) == set(range(14, 31))

        for seq in range(31, 36):
            await update_log.append(update(f"late{seq % 3}"))
        await follower.caught_up(35)
        assert follower.announced == [31, 32, 33, 34, 35]
        assert (head.base, head.tail) == (19, 35)
        assert await check_agreement(update_log, head, range(0, 37)) == set(range(19, 36))

    async def test_deleted_entries_are_left_to_the_log_which_says_resync(
        self, db: AsyncDatabase[Document], follow: list[Follower]
    ) -> None:
        """TTL expiry (or an operator) deletes entries: the stream reports it, the head stops
        answering across the hole, and the log's ``resync`` stands; past it the head answers."""
        update_log = await log_with(db, [f"p{seq}" for seq in range(1, 11)])
        head = HeadWindow(16)
        follow.append(follower := Follower(update_log, head, after=10))
        await follower.caught_up(10)
        await db[PROJECT_UPDATES].delete_one({"_id": 4})
        await until(lambda: head.answer(3, 100) is None, "the deletion reaching the head")
        assert await check_agreement(update_log, head, range(0, 12)) == set(range(4, 11))
        assert (await poll_after(update_log, 2, head=head)).resync

        await db[PROJECT_UPDATES].delete_many({})  # a quiet log expires entirely
        await until(lambda: head.answer(9, 100) is None, "the deletions reaching the head")
        assert await check_agreement(update_log, head, range(0, 12)) == {10}
        assert await poll_after(update_log, 10, head=head) == Poll([], 10)

    async def test_a_cursor_ahead_of_its_tail_is_answered_by_the_log(
        self, db: AsyncDatabase[Document]
    ) -> None:
        """Another replica wrote 6–8 and gave a client cursor 7; this head has followed only
        to 5: the log answers — the client gets entry 8, is not sent back, and at 8 hears
        "nothing new" only because it is true."""
        update_log = await log_with(db, [f"p{seq}" for seq in range(1, 9)])
        head = HeadWindow(16)
        head.restart(0)
        for followed in await update_log.entries_after(0, 5):
            head.add(followed)
        head.caught_up(5)
        since = MetricsSince()
        assert await poll_after(update_log, 7, head=head) == Poll(["p8"], 8)
        assert await poll_after(update_log, 8, head=head) == Poll([], 8)
        with pytest.raises(CursorAhead):
            await poll_after(update_log, 9, head=head)
        assert answered(since) == (0, 3)
        # Cursors it has followed past are its own to answer (as the log did a moment ago).
        assert await poll_after(update_log, 3, head=head) == Poll(["p4", "p5"], 5)
        assert answered(since) == (1, 3)

    async def test_after_a_log_reset_it_agrees_with_the_new_log(
        self, db: AsyncDatabase[Document], follow: list[Follower], settings: Settings
    ) -> None:
        """Dropping the log (and its counter) ends the change stream; the head is rebuilt from
        the new log: old cursors are "ahead of the log" again, new ones answered."""
        update_log = await log_with(db, [f"old{seq}" for seq in range(1, 21)])
        head = HeadWindow(8)
        follow.append(follower := Follower(update_log, head, after=20))
        await follower.caught_up(20)
        with capture_logs() as logs:
            await db[COUNTERS].drop()  # first: the stream ends with the log's drop
            await db[PROJECT_UPDATES].drop()
            await ensure_indexes(db, settings.updates_retention_seconds)
            await update_log.prepare()
            for project_id in ("new1", "new2", "new3"):
                await update_log.append(update(project_id))

            await until(lambda: head.live and head.tail == 3, "the head rebuilt on the new log")
        assert "update_log_follow_failed" in [line["event"] for line in logs]
        assert await check_agreement(update_log, head, range(0, 22)) == {0, 1, 2, 3}
        with pytest.raises(CursorAhead):
            await poll_after(update_log, 20, head=head)

    async def test_racing_writers_and_a_reader_on_the_head_see_each_entry_once(
        self, db: AsyncDatabase[Document], settings: Settings, follow: list[Follower]
    ) -> None:
        """200 appends from two writers; a reader polling through the head (falling back
        whenever its cursor is ahead of the tail) sees every entry once, never a resync."""
        clients = [connect(settings, "update_notifier"), connect(settings, "update_notifier")]
        try:
            writers = [await log_with(client[settings.mongo_db], []) for client in clients]
            reader = UpdateLog(db)
            head = HeadWindow(64)
            follow.append(follower := Follower(reader, head, after=0))
            await follower.caught_up(0)
            since = MetricsSince()
            expected = {f"p{index}" for index in range(200)}
            seen: list[str] = []
            writing = asyncio.gather(*(writers[index % 2].append(update(f"p{index}"))
                                       for index in range(200)))

            async def read_until_all_seen() -> None:
                cursor = 0
                while len(seen) < len(expected):
                    poll = await poll_after(reader, cursor, head=head)
                    assert not poll.resync
                    assert poll.cursor >= cursor
                    seen.extend(poll.project_ids)
                    cursor = poll.cursor
                    await asyncio.sleep(0)

            await asyncio.wait_for(asyncio.gather(writing, read_until_all_seen()), 30)
            assert len(seen) == len(expected)  # nothing twice
            assert set(seen) == expected  # nothing missed
            assert since(POLLS, source="head") > 0
        finally:
            for client in clients:
                await client.close()


class TestHeadAcrossStreamLoss:
    async def test_answers_nothing_while_the_stream_is_lost_then_agrees_again(
        self, restartable_mongod: tuple[Path, int, list[subprocess.Popen[bytes]]],
        follow: list[Follower],
    ) -> None:
        """mongod restarts under the change stream: the head stops answering (a deletion
        could go unseen), is rebuilt from the log once the stream is back, and agrees."""
        data_dir, port, processes = restartable_mongod
        client: AsyncMongoClient[Document] = AsyncMongoClient(
            mongo_url(port), serverSelectionTimeoutMS=300, tz_aware=True)
        try:
            db = client["head"]
            await ensure_indexes(db, 3600)
            update_log = await log_with(db, ["p1", "p2", "p3"])
            head = HeadWindow(16)
            follow.append(follower := Follower(update_log, head, after=0))
            await follower.caught_up(3)
            assert head.answer(1, 100) == HeadAnswer(["p2", "p3"], 3)

            await asyncio.to_thread(stop_mongod, processes[-1])
            await until(lambda: not head.live, "the head no longer live")
            assert head.answer(3, 100) is None
            processes.append(await asyncio.to_thread(start_mongod, data_dir, port))
            await db[PROJECT_UPDATES].delete_one({"_id": 1})  # maybe while no stream is open
            for project_id in ("p4", "p5"):
                await update_log.append(update(project_id))
            await follower.caught_up(5, timeout=30)
            assert await check_agreement(update_log, head, range(0, 7)) == set(range(1, 6))
            assert follower.announced == [1, 2, 3, 4, 5]
        finally:
            await client.close()
