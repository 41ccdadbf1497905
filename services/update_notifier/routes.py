"""Every route of the notifier, in one place (as aiohttp-demos' polls registers its own)."""

from __future__ import annotations

from aiohttp import web

from services.update_notifier.dashboard.sandbox import (
    create_scheduled_post,
    create_system_post,
    sandbox_enabled,
)
from services.update_notifier.dashboard.views import (
    STATIC_DIR,
    STATIC_PREFIX,
    get_project,
    get_timeline,
    index,
    list_projects,
)
from services.update_notifier.stream import stream_updates
from services.update_notifier.views import get_updates, ready_check
from shared.health import add_health_routes
from shared.openapi import add_openapi_route


def setup_routes(app: web.Application) -> None:
    router = app.router
    # The API the frontend uses (shared/openapi.yaml).
    router.add_post("/api/getUpdates", get_updates)
    router.add_get("/api/updates/stream", stream_updates)
    add_health_routes(app, ready_check(app), service="update_notifier")  # /healthz, /readyz, /metrics
    # The dashboard: the live page and its JSON API (services/update_notifier/dashboard/).
    router.add_get("/", index)
    router.add_static(STATIC_PREFIX, STATIC_DIR)
    router.add_get("/api/dashboard/projects", list_projects)
    router.add_get("/api/dashboard/projects/{project_id}", get_project)
    router.add_get("/api/dashboard/timeline", get_timeline)
    if sandbox_enabled(app):
        router.add_post("/api/dashboard/sandbox/scheduled-post", create_scheduled_post)
        router.add_post("/api/dashboard/sandbox/system-post", create_system_post)
    add_openapi_route(app)  # GET /openapi.yaml
