"""Frontend clients of the notifier that keep what they saw, and the checks on it.

"Exactly once", as checked here, for one cursor chain (``getUpdates`` with a cursor,
whichever replica answers) and for one SSE follower (reconnecting with
``Last-Event-ID``):

* the update log itself has no hole: its seqs are exactly 1..latest;
* the polls of a chain tile the log: each poll covers the entries after the cursor it
  sent up to the cursor it got back, consecutive polls meet, and together they cover
  every entry from where the chain started to the end — so each entry is reported by
  exactly one poll, and no poll ever went back (``resync`` never happens);
* each poll's ``updatedProjectIds`` are exactly the distinct projects of the entries it
  covers, in order of first appearance;
* an SSE follower receives every seq after its start exactly once, in order, each with
  its entry's project.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

import aiohttp
from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase

from shared.mongo import PROJECT_UPDATES, Document
from tests.resilience.harness import ServiceGroup
from tests.support.background import in_background
from tests.support.waiting import eventually
from tests.update_notifier.sse_client import SseStream


def seq_of(cursor: str) -> int:
    return int(cursor.removeprefix("v1."))


@dataclass(frozen=True)
class LoggedEntry:
    seq: int
    project_id: str
    reason: str


async def update_log(db: AsyncDatabase[Document]) -> list[LoggedEntry]:
    return [LoggedEntry(int(doc["_id"]), str(doc["project_id"]), str(doc.get("reason", "")))
            async for doc in db[PROJECT_UPDATES].find({}, sort=[("_id", ASCENDING)])]


async def wait_all_logged(db: AsyncDatabase[Document], services: ServiceGroup,
                          timeout: float = 30) -> list[LoggedEntry]:
    """Wait until every change the services announced (refreshes, system-post
    transitions) is in the update log; the log."""
    def announced() -> int:
        return (len(services.events("refresher", "project_update_announced"))
                + len(services.events("post_tracker", "post_published", "post_verified")))

    async def all_logged() -> bool:
        return len(await update_log(db)) >= announced()

    await eventually(all_logged, timeout=timeout, what="every change logged")
    return await update_log(db)


def assert_log_has_no_hole(entries: Sequence[LoggedEntry]) -> None:
    assert [entry.seq for entry in entries] == list(range(1, len(entries) + 1))


@dataclass(frozen=True)
class Poll:
    after: int
    cursor: int
    project_ids: tuple[str, ...]
    resync: bool


@dataclass
class CursorChain:
    """One frontend tab polling ``getUpdates`` with a cursor, round-robin over replicas."""

    http: aiohttp.ClientSession
    base_urls: Sequence[str]
    headers: dict[str, str] = field(default_factory=dict)
    start: int | None = None
    polls: list[Poll] = field(default_factory=list)
    failures: int = 0  # polls that got no answer (a replica down): retried later
    _turn: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def cursor(self) -> int:
        assert self.start is not None
        return self.polls[-1].cursor if self.polls else self.start

    async def _post(self, base_url: str, body: dict[str, object]) -> dict[str, object] | None:
        try:
            async with self.http.post(f"{base_url}/api/getUpdates", json=body, headers=self.headers,
                                      timeout=aiohttp.ClientTimeout(total=5)) as response:
                if response.status != 200:
                    self.failures += 1
                    return None
                answer: dict[str, object] = await response.json()
                return answer
        except (aiohttp.ClientError, TimeoutError):
            self.failures += 1
            return None

    async def begin(self) -> None:
        """``{"cursor": null}``: the chain starts at the log's current end."""
        while self.start is None:
            answer = await self._post(self.base_urls[0], {"cursor": None})
            if answer is not None:
                self.start = seq_of(str(answer["cursor"]))
            else:
                await asyncio.sleep(0.2)

    async def poll(self) -> Poll | None:
        async with self._turn:  # a tab sends its next poll after the previous answer
            return await self._poll()

    async def _poll(self) -> Poll | None:
        base_url = self.base_urls[(len(self.polls) + self.failures) % len(self.base_urls)]
        after = self.cursor
        answer = await self._post(base_url, {"cursor": f"v1.{after}"})
        if answer is None:
            return None
        ids = answer["updatedProjectIds"]
        assert isinstance(ids, list)
        poll = Poll(after, seq_of(str(answer["cursor"])), tuple(str(i) for i in ids),
                    bool(answer.get("resync")))
        self.polls.append(poll)
        return poll

    async def catch_up(self, latest: int, timeout: float) -> None:
        try:
            async with asyncio.timeout(timeout):
                while self.cursor < latest:
                    if await self.poll() is None:
                        await asyncio.sleep(0.2)
        except TimeoutError:
            raise AssertionError(f"the chain is at {self.cursor} after {timeout}s, not {latest}; "
                                 f"{self.failures} failed polls") from None

    @contextlib.asynccontextmanager
    async def polling(self, interval: float) -> AsyncIterator[CursorChain]:
        """Poll in the background (as a tab does) while the block runs."""
        async def loop() -> None:
            while True:
                await self.poll()
                await asyncio.sleep(interval)

        await self.begin()
        async with in_background(loop()):
            yield self

    def check(self, entries: Sequence[LoggedEntry]) -> int:
        """Assert the chain saw each entry after its start exactly once; the entries seen."""
        assert self.start is not None
        assert not [poll for poll in self.polls if poll.resync]
        position = self.start
        by_seq = {entry.seq: entry for entry in entries}
        for poll in self.polls:
            assert poll.after == position, (poll, position)
            assert poll.cursor >= poll.after, poll
            covered = [by_seq[seq] for seq in range(poll.after + 1, poll.cursor + 1)]
            assert poll.project_ids == tuple(dict.fromkeys(e.project_id for e in covered)), poll
            position = poll.cursor
        assert position == (entries[-1].seq if entries else 0)
        return position - self.start


@dataclass
class SseFollower:
    """An ``EventSource``: follows the stream and reconnects with ``Last-Event-ID``."""

    http: aiohttp.ClientSession
    base_url: str
    headers: dict[str, str] = field(default_factory=dict)
    start: int | None = None
    received: list[tuple[int, str]] = field(default_factory=list)
    resyncs: int = 0
    connections: int = 0
    last_error: str | None = None
    _started: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def last(self) -> int | None:
        return self.received[-1][0] if self.received else self.start

    async def _follow_once(self) -> None:
        headers = dict(self.headers)
        if self.last is not None:
            headers["Last-Event-ID"] = f"v1.{self.last}"
        async with self.http.get(f"{self.base_url}/api/updates/stream", headers=headers,
                                 timeout=aiohttp.ClientTimeout(total=None, sock_read=30)
                                 ) as response:
            if response.status != 200:
                return
            self.connections += 1
            stream = SseStream(response)
            while True:
                event = await stream.next_event(timeout=3600)
                if event.event == "ready":
                    self.start = seq_of(str(event.data["cursor"]))
                    self._started.set()
                elif event.event == "resync":
                    self.resyncs += 1
                elif event.event == "update":
                    assert event.id is not None
                    self.received.append((seq_of(event.id), str(event.data["projectId"])))

    async def _run(self) -> None:
        while True:
            try:
                await self._follow_once()
            except (aiohttp.ClientError, EOFError, TimeoutError, ConnectionError) as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
            await asyncio.sleep(0.2)  # EventSource's retry (the server asks for 2 s)

    @contextlib.asynccontextmanager
    async def following(self) -> AsyncIterator[SseFollower]:
        async with in_background(self._run()):
            async with asyncio.timeout(30):
                await self._started.wait()
            yield self

    async def catch_up(self, latest: int, timeout: float) -> None:
        async def there() -> bool:
            return (self.last or 0) >= latest

        try:
            await eventually(there, timeout=timeout, interval=0.1)
        except AssertionError:
            raise AssertionError(f"the stream is at {self.last} after {timeout}s, not {latest}; "
                                 f"{self.connections} connections, {self.resyncs} resyncs, "
                                 f"last error: {self.last_error}") from None

    def check(self, entries: Sequence[LoggedEntry]) -> int:
        """Assert every entry after the start came exactly once, in order; how many."""
        assert self.start is not None and self.resyncs == 0
        expected = [(entry.seq, entry.project_id) for entry in entries if entry.seq > self.start]
        assert self.received == expected
        return len(self.received)
