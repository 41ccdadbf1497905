"""The baseline of the HTTP benchmarks: a bare aiohttp app that answers ``ok`` without work.

Same framework, same server setup (``AppRunner`` without access log, one process, the
default asyncio loop) as the gateway and the notifier, so the ratio to it is the cost of
what the services do per request. Every POST path reads the body and answers ``ok``;
``GET /readyz`` answers ``ready``.

``python -m bench.bare_app --port N`` (stops on SIGTERM/SIGINT).
"""

from __future__ import annotations

import argparse
import asyncio
import signal

from aiohttp import web

from shared.service import LISTEN_BACKLOG


async def answer_ok(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(text="ok", content_type="text/plain", charset="utf-8")


async def ready(_request: web.Request) -> web.Response:
    return web.Response(text="ready", content_type="text/plain")


def init_app() -> web.Application:
    app = web.Application()
    app.router.add_post("/{tail:.*}", answer_ok)
    app.router.add_get("/readyz", ready)
    return app


async def serve(host: str, port: int) -> None:
    runner = web.AppRunner(init_app(), access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, host, port, backlog=LISTEN_BACKLOG).start()  # as the services
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bare_app")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
