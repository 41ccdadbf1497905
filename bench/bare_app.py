"""The baseline of the HTTP benchmarks: a bare aiohttp app that answers ``ok`` without work.

Same framework, same server setup (``AppRunner`` without access log, one process, the
services' event loop: ``shared.service.run_loop``) as the gateway and the notifier, so
the ratio to it is the cost of what the services do per request. Every POST path
reads the body and answers ``ok``; ``GET /readyz`` answers ``ready``.

With ``--publish-to PREFIX`` it is the *naive* durable baseline of the gateway
benchmark: each POST's body is first published with a confirm of its own (one
persistent, mandatory aio-pika publish per request, ``shared.broker``) to the
callbacks exchange of that topology, then answered ``ok``.

``python -m bench.bare_app --port N [--publish-to PREFIX --amqp-url URL]`` (stops on
SIGTERM/SIGINT).
"""

from __future__ import annotations

import argparse
import asyncio
import signal

from aiohttp import web

from shared.broker import Broker, PublishFailed
from shared.service import LISTEN_BACKLOG, run_loop
from shared.topology import CALLBACK_ROUTING_KEY, Topology

BROKER = web.AppKey("broker", Broker)


async def answer_ok(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(text="ok", content_type="text/plain", charset="utf-8")


async def publish_then_ok(request: web.Request) -> web.Response:
    body = await request.read()
    try:
        await request.app[BROKER].publish_body(
            body, kind="callback_event", correlation_id="naive", timeout=2.0,
            exchange=request.app[BROKER].topology.callbacks_exchange, routing_key=CALLBACK_ROUTING_KEY)
    except PublishFailed:
        return web.Response(text="temporarily unavailable", status=503)
    return web.Response(text="ok", content_type="text/plain", charset="utf-8")


async def ready(_request: web.Request) -> web.Response:
    return web.Response(text="ready", content_type="text/plain")


def init_app(broker: Broker | None = None) -> web.Application:
    app = web.Application()
    if broker is None:
        app.router.add_post("/{tail:.*}", answer_ok)
    else:
        app[BROKER] = broker
        app.router.add_post("/{tail:.*}", publish_then_ok)
    app.router.add_get("/readyz", ready)
    return app


async def serve(host: str, port: int, publish_to: str | None = None,
                amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/") -> None:
    broker = None
    if publish_to is not None:
        broker = Broker(amqp_url, Topology(publish_to), client_name="bench-naive")
        await broker.connect()
    runner = web.AppRunner(init_app(broker), access_log=None, handle_signals=False)
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
        if broker is not None:
            await broker.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bare_app")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--publish-to", metavar="PREFIX",
                        help="the naive baseline: publish each body with a confirm first")
    parser.add_argument("--amqp-url", default="amqp://guest:guest@127.0.0.1:5672/")
    args = parser.parse_args()
    run_loop(serve(args.host, args.port, args.publish_to, args.amqp_url))


if __name__ == "__main__":
    main()
