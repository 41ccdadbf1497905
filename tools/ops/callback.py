"""``callback setup|status``: a project's community connected to our gateway by VK's Callback API.

``setup`` runs :func:`tools.callback_setup.setup_callback` (confirmation code stored,
server created or updated with a fresh secret, exactly the refresher's events enabled),
then waits, bounded, for VK's confirmation handshake with the gateway to end.
``status`` reports the community's servers as VK sees them; VK stops sending to a server
that keeps failing (status ``failed``) until it is confirmed again by ``setup``.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from shared.documents import DocumentError, Project
from shared.mongo import Document
from shared.vk import CallbackServer
from tools.callback_setup import (
    REFRESH_EVENTS,
    SERVER_TITLE,
    ProjectNotFound,
    callback_status,
    setup_callback,
)
from tools.ops import table
from tools.ops.arguments import http_url, positive_seconds
from tools.ops.context import OpsContext
from tools.ops.failures import EXIT_OK, OpsFailure

OK = "ok"
FAILED = "failed"
POLL_SECONDS = 0.5
# Right after an edit VK may still show the previous handshake's "failed" for a moment.
FAILED_GRACE_SECONDS = 2.0
DEFAULT_WAIT_SECONDS = 15.0


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "callback", help="connect a community's Callback API to the gateway; check it",
        description="VK's Callback API servers of a project's community.")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    setup = actions.add_parser(
        "setup", help="create or update the callback server and wait for its confirmation",
        description="Fetch the confirmation code (groups.getCallbackConfirmationCode) and store "
                    "it, create or update the server titled "
                    f"'{SERVER_TITLE}' with a new random secret, enable exactly the refresher's "
                    f"events ({', '.join(REFRESH_EVENTS)}), then wait until VK confirmed the "
                    "gateway (status ok). Exits 1 if it is not ok in time. Also re-confirms a "
                    "server VK paused (status failed) once the gateway answers again. Safe to "
                    "run again, e.g. after it failed midway.")
    setup.add_argument("project_id", metavar="PROJECT", help="the project's id")
    setup.add_argument("--url", required=True, type=http_url,
                       help="the gateway's public callback URL, e.g. https://host/api/callback")
    setup.add_argument("--timeout", type=positive_seconds, default=DEFAULT_WAIT_SECONDS,
                       metavar="SECONDS",
                       help=f"how long to wait for the handshake (default {DEFAULT_WAIT_SECONDS:g})")
    setup.set_defaults(handler=setup_server)

    status = actions.add_parser(
        "status", help="the community's callback servers as VK reports them",
        description=f"List the callback servers (groups.getCallbackServers). Exits 1 unless "
                    f"the '{SERVER_TITLE}' server exists and is ok; VK pauses a server that "
                    "fails repeatedly (status failed): fix the gateway, then run `callback setup`.")
    status.add_argument("project_id", metavar="PROJECT", help="the project's id")
    status.set_defaults(handler=server_status)


def _credentials(document: Document) -> tuple[str, int]:
    try:
        project = Project.from_document(document)
    except DocumentError as exc:
        raise OpsFailure(f"project {document.get('_id')}: {exc}") from None
    if project.problem is not None:
        raise OpsFailure(f"project {project.label}: {project.problem}")
    return project.token, project.group_id


def _describe(server: CallbackServer) -> str:
    return f"callback server {server.id} ({server.title}) {server.url}: {server.status}"


async def _wait_for_handshake(ctx: OpsContext, token: str, group_id: int,
                              server: CallbackServer, timeout: float) -> CallbackServer:
    """The server once ``ok``, once ``failed`` for longer than the grace, or at the deadline."""
    started = time.monotonic()
    failed_since: float | None = None
    while server.status != OK:
        now = time.monotonic()
        failed_since = (failed_since or now) if server.status == FAILED else None
        if now - started >= timeout or (
                failed_since is not None and now - failed_since >= FAILED_GRACE_SECONDS):
            break
        await asyncio.sleep(POLL_SECONDS)
        server = await callback_status(ctx.vk(), token, group_id, server.id)
    return server


async def setup_server(ctx: OpsContext, args: argparse.Namespace) -> int:
    project = await ctx.project(args.project_id)
    token, group_id = _credentials(project)
    try:
        server = await setup_callback(ctx.db(), ctx.vk(), args.project_id, args.url,
                                      ctx.settings.vk_api_version)
    except ProjectNotFound:
        raise OpsFailure(f"unknown project: {args.project_id}") from None
    except LookupError as exc:
        raise OpsFailure(str(exc)) from None
    ctx.say(f"community {group_id}: {_describe(server)}; waiting for VK's confirmation")
    server = await _wait_for_handshake(ctx, token, group_id, server, args.timeout)
    ctx.say(_describe(server))
    if server.status != OK:
        raise OpsFailure(f"VK did not confirm {args.url} (status {server.status}): the gateway "
                         "must be reachable from VK at that URL and serve this project")
    return EXIT_OK


async def server_status(ctx: OpsContext, args: argparse.Namespace) -> int:
    project = await ctx.project(args.project_id)
    token, group_id = _credentials(project)
    servers = await ctx.vk().groups_get_callback_servers(token, group_id)
    if servers:
        ctx.say(table.render(["ID", "TITLE", "URL", "STATUS"],
                             [[s.id, s.title, s.url, s.status] for s in servers]))
    ours = [server for server in servers if server.title == SERVER_TITLE]
    if not ours:
        raise OpsFailure(f"community {group_id} has no '{SERVER_TITLE}' callback server; run: "
                         f"python -m tools.ops callback setup {args.project_id} --url URL")
    broken = [server for server in ours if server.status != OK]
    if broken:
        raise OpsFailure(f"{_describe(broken[0])}; VK sends it no events. Once the gateway "
                         f"answers, run: python -m tools.ops callback setup {args.project_id} "
                         f"--url {broken[0].url}")
    return EXIT_OK
