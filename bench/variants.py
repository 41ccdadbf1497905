"""Run a service with a candidate optimisation applied from outside, to measure it first.

``python -m bench.variants [--uvloop] [--orjson] services.callback_gateway``

* ``--uvloop``: the service's ``asyncio.run`` runs on uvloop (the event-loop policy is
  set before the service module runs). The equivalent change in the code is in
  ``shared/service.py``, ``run_service``: ``asyncio.run(...)`` → ``uvloop.run(...)``.
* ``--orjson``: structlog renders JSON log lines with ``orjson.dumps`` (bytes, through
  ``structlog.BytesLoggerFactory``) instead of ``json.dumps``, and the gateway parses
  bodies with ``orjson.loads``. The equivalent changes are in ``shared/logging.py``
  (``configure_logging``) and ``services/callback_gateway/parsing.py``.

Nothing in ``services/`` or ``shared/`` is edited: the patches are applied in this
process only, before the service's ``__main__`` runs.
"""

from __future__ import annotations

import argparse
import asyncio
import runpy
import sys
import types
from typing import Any


def use_uvloop() -> None:
    import uvloop

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def use_orjson() -> None:
    import orjson
    import structlog

    import services.callback_gateway.parsing as parsing
    import shared.logging as shared_logging
    import shared.service as shared_service

    def orjson_dumps(value: Any, **_: Any) -> bytes:
        return orjson.dumps(value, default=repr)

    # parse_callback reads json.loads and json.JSONDecodeError from its module's ``json``.
    setattr(parsing, "json",  # noqa: B010 - the module does not export it
            types.SimpleNamespace(loads=orjson.loads, JSONDecodeError=orjson.JSONDecodeError))
    original = shared_logging.configure_logging

    def configure_logging(settings: Any, service: str) -> None:
        original(settings, service)
        if settings.log_format.value != "json":
            return
        config = structlog.get_config()
        processors = [orjson_dumps_renderer(orjson_dumps) if isinstance(
            processor, structlog.processors.JSONRenderer) else processor
            for processor in config["processors"]]
        structlog.configure(processors=processors,
                            logger_factory=structlog.BytesLoggerFactory(sys.stdout.buffer))

    setattr(shared_service, "configure_logging", configure_logging)  # noqa: B010


def orjson_dumps_renderer(dumps: Any) -> Any:
    import structlog

    return structlog.processors.JSONRenderer(serializer=dumps)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.variants")
    parser.add_argument("--uvloop", action="store_true")
    parser.add_argument("--orjson", action="store_true")
    parser.add_argument("module", help="e.g. services.callback_gateway")
    args = parser.parse_args(argv)
    if args.uvloop:
        use_uvloop()
    if args.orjson:
        use_orjson()
    sys.argv = [args.module]
    runpy.run_module(args.module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
