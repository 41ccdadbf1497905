"""Many Server-Sent-Events clients in one process, for the notifier's capacity benchmark.

``python -m bench.sse_clients --port N --count 10000`` opens ``count`` streams on
``/api/updates/stream`` (``concurrency`` handshakes at a time), waits for each one's
``ready`` event and prints one JSON line: how many are open. Then, on a line ``go`` on
stdin, it waits until every stream has received an ``update`` event (or ``--timeout``)
and prints a second JSON line with the receipt times (``time.time()``). It closes the
streams and exits when stdin closes.

Raw asyncio protocols (no HTTP client library): a stream costs one socket and a few
hundred bytes here, so the client side is not what limits the count.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from typing import Any, cast

READY = b"event: ready"
UPDATE = b"event: update"


class Stream(asyncio.Protocol):
    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.ready = loop.create_future()
        self.updated_at: float | None = None
        self.updated = loop.create_future()
        self.transport: asyncio.Transport | None = None
        self._tail = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        text = self._tail + data
        self._tail = data[-32:]
        if not self.ready.done() and READY in text:
            self.ready.set_result(None)
        if self.updated_at is None and UPDATE in text:
            self.updated_at = time.time()
            self.updated.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        for future in (self.ready, self.updated):
            if not future.done():
                future.set_exception(ConnectionError("stream closed"))


async def open_streams(host: str, port: int, count: int, concurrency: int,
                       timeout: float) -> tuple[list[Stream], int]:
    loop = asyncio.get_running_loop()
    request = (f"GET /api/updates/stream HTTP/1.1\r\nHost: {host}:{port}\r\n"
               "Accept: text/event-stream\r\n\r\n").encode()
    limit = asyncio.Semaphore(concurrency)
    streams: list[Stream] = []
    failed = 0

    async def one() -> None:
        nonlocal failed
        async with limit:
            try:
                _, stream = await loop.create_connection(Stream, host, port)
                assert stream.transport is not None
                stream.transport.write(request)
                await asyncio.wait_for(stream.ready, timeout)
                streams.append(stream)
            except (OSError, TimeoutError, ConnectionError):
                failed += 1

    await asyncio.gather(*(one() for _ in range(count)))
    return streams, failed


async def main_async(args: argparse.Namespace) -> None:
    started = time.monotonic()
    streams, failed = await open_streams(args.host, args.port, args.count, args.concurrency,
                                         args.timeout)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    emit({"opened": len(streams), "failed": failed,
          "seconds": round(time.monotonic() - started, 2),
          "client_max_rss_mb": round(usage.ru_maxrss / 1024, 1)})
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while (line := await reader.readline()) and line.strip() != b"go":
        pass
    if line:
        waiting = [stream.updated for stream in streams if not stream.updated.done()]
        if waiting:
            await asyncio.wait(waiting, timeout=args.timeout)
        times = sorted(stream.updated_at for stream in streams if stream.updated_at is not None)
        emit({"received": len(times), "of": len(streams), "times": summary(times)})
        await reader.read()  # until stdin closes
    for stream in streams:
        if stream.transport is not None:
            stream.transport.close()


def summary(times: list[float]) -> dict[str, Any]:
    if not times:
        return {}
    return {"first": times[0], "p50": times[len(times) // 2],
            "p99": times[min(len(times) - 1, int(len(times) * 0.99))], "last": times[-1]}


def emit(data: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(data) + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.sse_clients")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < args.count + 100:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, args.count + 1000), hard))
    try:
        import uvloop

        uvloop.run(main_async(args))
    except ImportError:
        asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
