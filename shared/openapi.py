"""The backbone's OpenAPI document, ``shared/openapi.yaml``, served as it is.

One document describes every service's HTTP endpoints; its operations are tagged with
the services that serve them. The gateway and the notifier serve it unchanged at
``GET /openapi.yaml`` (read once, when the route is added, so a missing file fails at
start). Served verbatim, no YAML parser is needed at run time.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

DOCUMENT_PATH = Path(__file__).with_name("openapi.yaml")
ROUTE = "/openapi.yaml"
MEDIA_TYPE = "application/yaml"


def add_openapi_route(app: web.Application) -> None:
    """Serve the OpenAPI document at ``GET /openapi.yaml`` on ``app``."""
    document = DOCUMENT_PATH.read_bytes()

    async def openapi(_request: web.Request) -> web.Response:
        return web.Response(body=document, content_type=MEDIA_TYPE, charset="utf-8")

    app.router.add_get(ROUTE, openapi)
