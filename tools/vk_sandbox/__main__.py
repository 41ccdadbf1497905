"""``python -m tools.vk_sandbox``: run the VK sandbox until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from aiohttp import web

from .app import init_app
from .config import SandboxConfig
from .demo import DEMO_GROUP_ID

logger = logging.getLogger("tools.vk_sandbox")


def parse_args(argv: list[str] | None = None) -> SandboxConfig:
    parser = argparse.ArgumentParser(prog="python -m tools.vk_sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090, help="0 picks a free port")
    parser.add_argument("--demo", action="store_true",
                        help="seed the demo community, its admin and their tokens")
    parser.add_argument("--retry-scale", type=float, default=1.0,
                        help="multiplier of the Callback API retry schedule")
    parser.add_argument("--log-level", default="INFO",
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                        help="DEBUG also logs every callback event sent")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return SandboxConfig(host=args.host, port=args.port, demo=args.demo,
                         retry_scale=args.retry_scale)


async def serve(config: SandboxConfig) -> None:
    runner = web.AppRunner(init_app(config), handle_signals=False, access_log=None)
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signal_number, stop.set)
    try:
        site = web.TCPSite(runner, config.host, config.port, backlog=1024)  # as our services
        await site.start()
        host, port = runner.addresses[0][:2]
        demo = f", demo community {DEMO_GROUP_ID}" if config.demo else ""
        logger.info("vk sandbox ready on http://%s:%d (API /method/, control /_sandbox/%s)",
                    host, port, demo)
        await stop.wait()
        logger.info("vk sandbox stopping")
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    asyncio.run(serve(parse_args(argv)))


if __name__ == "__main__":
    main()
