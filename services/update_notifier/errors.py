"""HTTP errors as one-line JSON (``{"error": "..."}``): bad input is never a 500."""

from __future__ import annotations

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler
from pymongo.errors import PyMongoError

from shared.logging import redact_text

log = structlog.get_logger(__name__)


class ApiError(Exception):
    """Raised by handlers: answer ``status`` with the one-line ``reason``."""

    def __init__(self, status: int, reason: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = headers or {}


def error_response(status: int, reason: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": reason}, status=status, headers=headers)


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.reason, exc.headers)
    except web.HTTPException:
        raise  # routing: 404, 405
    except PyMongoError as exc:
        log.warning("storage_unavailable", path=request.path,
                    error=redact_text(f"{type(exc).__name__}: {exc}"))
        return error_response(503, "storage unavailable, try again")
    except Exception:
        log.exception("request_failed", path=request.path)
        return error_response(500, "internal error")
