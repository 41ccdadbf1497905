"""A real HTTP server on 127.0.0.1 that records requests and answers scripted bodies.

For what the sandbox deliberately never does: echo the access token back (in an
error message or ``request_params``), so redaction has something to remove.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer


@dataclass(frozen=True)
class RecordedRequest:
    http_method: str
    path: str
    content_type: str
    form: dict[str, str]


class RecordingServer:
    """Answers each request with the next scripted JSON body, then ``{"response": 1}``."""

    def __init__(self, replies: Iterable[dict[str, Any]] = ()) -> None:
        self.replies: deque[dict[str, Any]] = deque(replies)
        self.requests: list[RecordedRequest] = []

    @asynccontextmanager
    async def running(self) -> AsyncIterator[str]:
        """Serve on a free port; yields the API base URL (``.../method``)."""
        app = web.Application()
        app.router.add_route("*", "/method/{method}", self._handle)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        try:
            yield str(server.make_url("/method"))
        finally:
            await server.close()

    async def _handle(self, request: web.Request) -> web.Response:
        form = {key: str(value) for key, value in (await request.post()).items()}
        self.requests.append(RecordedRequest(request.method, request.path,
                                             request.content_type, form))
        reply = self.replies.popleft() if self.replies else {"response": 1}
        return web.json_response(reply)
