"""Logging of a command-line run: warnings only, on stderr, secrets redacted.

stdout is the command's output; warnings (a VK call retried) go to stderr so they
neither mix with it nor go unseen.
"""

from __future__ import annotations

import logging
import sys

import structlog

from shared.logging import redact_secrets

QUIET_LIBRARIES = ("aiormq", "aio_pika")


def configure_cli_logging(level: int = logging.WARNING) -> None:
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            redact_secrets,
            structlog.dev.ConsoleRenderer(colors=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    # A failed connection is the command's own one-line error; the client's log of it
    # would only repeat it.
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.CRITICAL)
