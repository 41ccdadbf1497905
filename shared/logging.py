"""structlog configuration shared by every service.

Secrets never reach a log line: :func:`redact_secrets` masks values of keys that
name a secret, and VK tokens found inside any string value.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from shared.settings import LogFormat, Settings

SECRET_KEYS = frozenset({"access_token", "token", "secret", "vk_user_token", "vk_callback_secret",
                         "password", "authorization", "vk_confirmation_code"})
# VK access tokens are long opaque strings; a query string or form body carrying one
# is masked wherever it appears.
_TOKEN_IN_TEXT = re.compile(r"(access_token=|secret=)[^&\s'\"]+")
REDACTED = "***"


def redact_text(text: str) -> str:
    return _TOKEN_IN_TEXT.sub(lambda match: match.group(1) + REDACTED, text)


def redact_secrets(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: mask secret-named keys and tokens embedded in strings."""
    for key, value in event_dict.items():
        if key.lower() in SECRET_KEYS and value is not None:
            event_dict[key] = REDACTED
        elif isinstance(value, str):
            event_dict[key] = redact_text(value)
    return event_dict


def configure_logging(settings: Settings, service: str) -> None:
    """Route structlog (and stdlib logging of libraries) to stdout in the chosen format."""
    level = logging.getLevelNamesMapping()[settings.log_level.value]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if settings.log_format is LogFormat.JSON
        else structlog.dev.ConsoleRenderer(colors=sys.stdout.isatty())
    )
    shared_processors: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_secrets,
    ]
    structlog.configure(
        processors=[
            *shared_processors,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        # One write per line (print() writes the newline apart): processes sharing a
        # stdout (GATEWAY_WORKERS) never interleave within a line.
        logger_factory=structlog.WriteLoggerFactory(sys.stdout),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.bind_contextvars(service=service)
    # Libraries (aio-pika, pymongo, aiohttp) log through stdlib; keep their warnings.
    logging.basicConfig(level=max(level, logging.WARNING), stream=sys.stdout,
                        format=f"%(asctime)s %(levelname)s {service} %(name)s: %(message)s")
