"""Run a service with a change applied from outside, to measure what it is worth.

``python -m bench.variants --asyncio services.callback_gateway``

* ``--asyncio``: the service runs on asyncio's own event loop instead of uvloop
  (``shared.service.run_loop`` → ``asyncio.run``), to show what uvloop gives.

Nothing in ``services/`` or ``shared/`` is edited: the patch is applied in this process
only, before the service's ``__main__`` runs.
"""

from __future__ import annotations

import argparse
import asyncio
import runpy
import sys


def use_asyncio_loop() -> None:
    import shared.service as shared_service

    setattr(shared_service, "run_loop", asyncio.run)  # noqa: B010 - patched for this process


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.variants")
    parser.add_argument("--asyncio", action="store_true")
    parser.add_argument("module", help="e.g. services.callback_gateway")
    args = parser.parse_args(argv)
    if args.asyncio:
        use_asyncio_loop()
    sys.argv = [args.module]
    runpy.run_module(args.module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
