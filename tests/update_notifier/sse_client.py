"""A minimal Server-Sent Events reader over an aiohttp client response, for tests."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp import ClientResponse

from tests.support.notifier import Notifier


@dataclass(frozen=True, slots=True)
class SseEvent:
    event: str
    id: str | None
    data: dict[str, Any]


class SseStream:
    """Reads events line by line; comment lines (keepalives) are collected apart."""

    def __init__(self, response: ClientResponse) -> None:
        self.response = response
        self.comments: list[str] = []
        self.retry: int | None = None

    async def next_event(self, timeout: float = 10) -> SseEvent:
        async with asyncio.timeout(timeout):
            return await self._read_event()

    async def events(self, count: int, timeout: float = 10) -> list[SseEvent]:
        async with asyncio.timeout(timeout):
            return [await self._read_event() for _ in range(count)]

    async def next_comment(self, timeout: float = 10) -> str:
        """Read on until a comment line arrives; fails if an event comes first."""
        seen = len(self.comments)
        async with asyncio.timeout(timeout):
            while len(self.comments) == seen:
                line = await self._line()
                assert line == "" or line.startswith((":", "retry:")), f"unexpected {line!r}"
                self._field(line)
        return self.comments[seen]

    async def _read_event(self) -> SseEvent:
        fields: dict[str, str] = {}
        while True:
            line = await self._line()
            if line == "":
                if "data" in fields:
                    return SseEvent(fields.get("event", "message"), fields.get("id"),
                                    json.loads(fields["data"]))
                continue
            name, value = self._field(line)
            if name:
                fields[name] = value

    def _field(self, line: str) -> tuple[str, str]:
        if line.startswith(":"):
            self.comments.append(line[1:].strip())
            return "", ""
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "retry":
            self.retry = int(value)
            return "", ""
        return name, value

    async def _line(self) -> str:
        raw = await self.response.content.readline()
        if not raw:
            raise EOFError("the server ended the stream")
        return raw.decode().removesuffix("\n")


@asynccontextmanager
async def open_stream(notifier: Notifier, *, headers: Mapping[str, str] | None = None,
                      params: Mapping[str, str] | None = None) -> AsyncIterator[SseStream]:
    response = await notifier.client.get("/api/updates/stream", headers=headers, params=params)
    try:
        assert response.status == 200, await response.text()
        assert response.headers["Content-Type"].startswith("text/event-stream")
        yield SseStream(response)
    finally:
        response.close()
