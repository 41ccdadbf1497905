"""A small HTTP/1.1 load generator, run as its own process: closed loop or fixed-rate open loop.

Why our own: Debian's ``wrk`` has no fixed-rate mode (that is wrk2, not packaged), and a
latency figure "at half load" needs one. The open loop sends request *i* at
``start + i / rate`` whatever happened to earlier ones and measures latency from that
*scheduled* moment, so a slow server cannot slow the generator down and hide its own
queueing (no coordinated omission). Requests go over keep-alive connections, one
request in flight per connection, through a minimal asyncio protocol (no HTTP client
library: a few µs of CPU per request), on uvloop when it is installed.

It reports its own CPU time and how late its scheduler dispatched requests, which is
the evidence that it is not the bottleneck.

``python -m bench.loadgen SPEC.json --mode open --rate 500 --duration 5 --connections 128``
prints one JSON object. SPEC: ``{"host", "port", "method", "path", "bodies": [...]}``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import sys
import time
from collections import Counter
from typing import Any, cast

# uvloop's loop.time() ticks in whole milliseconds: every timestamp here is perf_counter's.
now = time.perf_counter


class HttpConnection(asyncio.Protocol):
    """One keep-alive connection; :meth:`request` sends raw bytes and returns the status.

    Only responses with ``Content-Length`` are understood (aiohttp's ``web.Response``).
    """

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._waiter: asyncio.Future[int] | None = None
        self._need: int | None = None
        self._status = 0
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        self._complete()

    def _complete(self) -> None:
        if self._waiter is None:
            return
        if self._need is None:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self._buffer[:end]).lower()
            self._status = int(head[9:12])
            marker = head.find(b"\r\ncontent-length:")
            length = 0
            if marker >= 0:
                stop = head.find(b"\r\n", marker + 2)
                length = int(head[marker + 17:stop if stop >= 0 else None])
            self._need = end + 4 + length
        if len(self._buffer) >= self._need:
            del self._buffer[:self._need]
            self._need = None
            waiter, self._waiter = self._waiter, None
            if not waiter.done():
                waiter.set_result(self._status)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(ConnectionError("connection lost"))
        if not self.closed.done():
            self.closed.set_result(None)

    async def request(self, data: bytes) -> int:
        assert self.transport is not None
        self._waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return await self._waiter


def build_requests(spec: dict[str, Any]) -> list[bytes]:
    method, path, host = spec.get("method", "POST"), spec["path"], spec["host"]
    headers = "".join(f"{name}: {value}\r\n" for name, value in spec.get("headers", {}).items())
    requests = []
    for body in spec.get("bodies") or [""]:
        payload = body.encode()
        requests.append(
            f"{method} {path} HTTP/1.1\r\nHost: {host}:{spec['port']}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n{headers}\r\n"
            .encode() + payload)
    return requests


async def connect(spec: dict[str, Any]) -> HttpConnection:
    loop = asyncio.get_running_loop()
    _, protocol = await loop.create_connection(HttpConnection, spec["host"], spec["port"])
    return protocol


class Recorder:
    def __init__(self, spec: dict[str, Any], measure_from: float) -> None:
        self.spec = spec
        self.measure_from = measure_from  # requests due earlier are warm-up
        self.latencies: list[float] = []
        self.statuses: Counter[int] = Counter()
        self.errors = 0

    async def send(self, conn: HttpConnection, request: bytes, due: float) -> HttpConnection:
        """Send one request due at ``due``, record it; the connection to go on with."""
        try:
            status = await conn.request(request)
        except ConnectionError:
            self.errors += 1
            return await connect(self.spec)
        if due >= self.measure_from:
            self.latencies.append(now() - due)
            self.statuses[status] += 1
        return conn


def summary(recorder: Recorder, window: float, extra: dict[str, Any]) -> dict[str, Any]:
    ordered = sorted(recorder.latencies)

    def pct(p: float) -> float | None:
        if not ordered:
            return None
        return round(ordered[min(len(ordered) - 1, round((len(ordered) - 1) * p / 100))]
                     * 1000, 3)

    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime
    non_2xx = sum(count for status, count in recorder.statuses.items() if not 200 <= status < 300)
    return {
        "completed": len(ordered), "errors": recorder.errors, "non_2xx": non_2xx,
        "statuses": {str(status): count for status, count in recorder.statuses.items()},
        "window_seconds": round(window, 3),
        "achieved_rps": round(len(ordered) / window, 1) if window > 0 else None,
        "latency_ms": {"p50": pct(50), "p90": pct(90), "p99": pct(99), "p999": pct(99.9),
                       "max": pct(100),
                       "mean": round(sum(ordered) / len(ordered) * 1000, 3) if ordered else None},
        "generator_cpu_seconds": round(cpu, 3), **extra,
    }


async def closed_loop(spec: dict[str, Any], duration: float, warmup: float,
                      connections: int) -> dict[str, Any]:
    requests = build_requests(spec)
    conns = [await connect(spec) for _ in range(connections)]
    start = now()
    recorder = Recorder(spec, measure_from=start + warmup)
    stop_at = start + warmup + duration
    counter = 0

    async def worker(conn: HttpConnection) -> None:
        nonlocal counter
        while (sent_at := now()) < stop_at:
            counter += 1
            conn = await recorder.send(conn, requests[counter % len(requests)], sent_at)

    cpu_before = time.process_time()
    await asyncio.gather(*(worker(conn) for conn in conns))
    for conn in conns:
        if conn.transport is not None:
            conn.transport.close()
    return summary(recorder, duration, {"mode": "closed", "connections": connections,
                                        "generator_cpu_percent": round(
                                            100 * (time.process_time() - cpu_before)
                                            / (warmup + duration), 1)})


async def open_loop(spec: dict[str, Any], rate: float, duration: float, warmup: float,
                    connections: int) -> dict[str, Any]:
    requests = build_requests(spec)
    queue: asyncio.Queue[float | None] = asyncio.Queue()
    conns = [await connect(spec) for _ in range(connections)]
    start = now() + 0.05
    recorder = Recorder(spec, measure_from=start + warmup)
    total = int(rate * (warmup + duration))
    counter = 0
    lags: list[float] = []

    async def worker(conn: HttpConnection) -> None:
        nonlocal counter
        while (scheduled := await queue.get()) is not None:
            counter += 1
            conn = await recorder.send(conn, requests[counter % len(requests)], scheduled)

    workers = [asyncio.create_task(worker(conn)) for conn in conns]
    cpu_before = time.process_time()
    for index in range(total):
        due = start + index / rate
        delay = due - now()
        if delay > 0:
            await asyncio.sleep(delay)
        lags.append(now() - due)
        queue.put_nowait(due)
    for _ in workers:
        queue.put_nowait(None)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*workers), timeout=30)
    cpu = time.process_time() - cpu_before
    for conn in conns:
        if conn.transport is not None:
            conn.transport.close()
    lags.sort()
    return summary(recorder, duration, {
        "mode": "open", "rate": rate, "connections": connections,
        "generator_cpu_percent": round(100 * cpu / (warmup + duration), 1),
        "dispatch_lag_ms": {"p50": round(lags[len(lags) // 2] * 1000, 3) if lags else None,
                            "p99": round(lags[int(len(lags) * 0.99)] * 1000, 3) if lags else None,
                            "max": round(lags[-1] * 1000, 3) if lags else None},
        "in_flight_at_end": queue.qsize()})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.loadgen")
    parser.add_argument("spec", help="JSON file: host, port, method, path, bodies")
    parser.add_argument("--mode", choices=["open", "closed"], default="closed")
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args(argv)
    with open(args.spec) as handle:
        spec = json.load(handle)
    try:
        import uvloop

        runner: Any = uvloop.run
        loop_name = "uvloop"
    except ImportError:
        runner, loop_name = asyncio.run, "asyncio"
    if args.mode == "open":
        result = runner(open_loop(spec, args.rate, args.duration, args.warmup, args.connections))
    else:
        result = runner(closed_loop(spec, args.duration, args.warmup, args.connections))
    result["loop"] = loop_name
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
