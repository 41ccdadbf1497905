"""The command line: parsing, settings, running a command, and its exit status.

:func:`main` is ``python -m tools.ops``; :func:`run` is the same inside a running
event loop (tests call it with their settings, environment, prompts and streams).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Mapping, Sequence
from typing import TextIO

from pydantic import ValidationError

from shared.settings import Settings, describe_error
from tools.ops import callback, dlq, posts, projects
from tools.ops.context import Handler, OpsContext
from tools.ops.failures import EXIT_FAILURE, EXIT_USAGE, EXPECTED, describe
from tools.ops.prompts import Prompts

PROG = "python -m tools.ops"
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Operate the VK planner backbone: projects, VK callback servers, "
                    "dead-lettered messages, failed system posts. Configuration comes from the "
                    "same environment variables as the services (MONGO_URL, MONGO_DB, AMQP_URL, "
                    "AMQP_PREFIX, VK_API_URL, …; see the README).",
        epilog="Exit status: 0 done, 1 operational failure, 2 usage error. "
               "Tokens and secrets are never printed.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (projects, callback, dlq, posts):
        module.register(commands)
    return parser


def _parse(argv: Sequence[str], out: TextIO, err: TextIO) -> argparse.Namespace | int:
    """The arguments, or the exit status argparse chose (0 after --help, 2 on an error)."""
    parser = build_parser()
    saved = sys.stdout, sys.stderr
    # argparse prints help to sys.stdout and usage errors to sys.stderr: keep them in ours.
    sys.stdout, sys.stderr = out, err
    try:
        return parser.parse_args(list(argv))
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    finally:
        sys.stdout, sys.stderr = saved


async def run(argv: Sequence[str], *, settings: Settings | None = None,
              environ: Mapping[str, str] | None = None, prompts: Prompts | None = None,
              out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run one command; its exit status. Expected failures are one ``error:`` line on ``err``."""
    out = out or sys.stdout
    err = err or sys.stderr
    parsed = _parse(argv, out, err)
    if isinstance(parsed, int):
        return parsed
    if settings is None:
        try:
            settings = Settings()
        except ValidationError as exc:
            print(describe_error(exc), file=err)
            return EXIT_USAGE
    ctx = OpsContext(settings, os.environ if environ is None else environ, prompts or Prompts(),
                     out, err)
    handler: Handler = parsed.handler
    try:
        return await handler(ctx, parsed)
    except EXPECTED as exc:
        print(f"error: {describe(exc)}", file=err)
        return getattr(exc, "exit_code", EXIT_FAILURE)
    finally:
        await ctx.close()


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return asyncio.run(run(sys.argv[1:] if argv is None else argv))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
