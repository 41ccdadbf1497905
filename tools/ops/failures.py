"""Expected failures of a command, and their one-line descriptions.

Anything listed here ends a command with one ``error: …`` line and exit status 1
(2 for :class:`UsageFailure`); anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import re

from aiormq.exceptions import AMQPError
from pymongo.errors import PyMongoError, ServerSelectionTimeoutError

from shared.broker import PublishFailed
from shared.logging import redact_text
from shared.vk import VkError

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

_MAX_CHARS = 500
# user:password@ in a MongoDB or AMQP URL that a driver may quote in its message.
_URL_CREDENTIALS = re.compile(r"(//[^/@\s:]*):[^/@\s]*@")


class OpsFailure(Exception):
    """The command could not do its job (unknown project, VK refused, …): exit 1."""

    exit_code = EXIT_FAILURE


class UsageFailure(OpsFailure):
    """The command line asks for something impossible or unsafe: exit 2."""

    exit_code = EXIT_USAGE


EXPECTED: tuple[type[BaseException], ...] = (
    OpsFailure, VkError, PyMongoError, AMQPError, PublishFailed, ConnectionError, TimeoutError,
)


def one_line(text: str) -> str:
    """``text`` on one line, bounded, with credentials and tokens masked."""
    flat = " ".join(_URL_CREDENTIALS.sub(r"\1:***@", redact_text(text)).split())
    return flat if len(flat) <= _MAX_CHARS else flat[:_MAX_CHARS - 1] + "…"


def describe(exc: BaseException) -> str:
    """What went wrong, for the operator: the VK code and message, the store that failed."""
    if isinstance(exc, OpsFailure):
        return one_line(str(exc))
    if isinstance(exc, VkError):  # "VK error 5 in groups.getCallbackServers: …" (redacted)
        return one_line(str(exc))
    if isinstance(exc, ServerSelectionTimeoutError):
        # The driver appends its timeouts and a whole topology description.
        first = re.split(r" \(configured timeouts|, Timeout: ", str(exc), maxsplit=1)[0]
        return one_line(f"MongoDB unreachable: {first}")
    if isinstance(exc, PyMongoError):
        return one_line(f"MongoDB: {type(exc).__name__}: {exc}")
    if isinstance(exc, PublishFailed):
        return one_line(f"RabbitMQ did not confirm a message: {exc}")
    if isinstance(exc, AMQPError | ConnectionError):
        return one_line(f"RabbitMQ: {type(exc).__name__}: {exc}")
    if isinstance(exc, TimeoutError):
        return one_line(f"timed out: {exc}" if str(exc) else "timed out")
    return one_line(f"{type(exc).__name__}: {exc}")
