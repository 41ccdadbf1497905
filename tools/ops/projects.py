"""``projects add|list|show``: the ``projects`` documents the services work for.

Tokens, callback secrets and confirmation codes are read from the environment or a
hidden prompt and are only ever shown as ``set`` / ``unset``.
"""

from __future__ import annotations

import argparse
import asyncio
from collections import defaultdict
from typing import Any

from pymongo.errors import DuplicateKeyError

from shared.documents import PostStatus
from shared.mongo import PROJECTS, SYSTEM_POSTS, ContentType, Document
from tools.ops import table
from tools.ops.arguments import identifier, positive_int
from tools.ops.context import OpsContext
from tools.ops.failures import EXIT_OK, OpsFailure, UsageFailure

TOKEN_VARIABLE = "VK_USER_TOKEN"
SECRET_VARIABLE = "VK_CALLBACK_SECRET"
STATUSES = tuple(status.value for status in PostStatus)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "projects", help="add, list and show projects",
        description="Projects: a VK community, an admin's user token, and the refresh status.")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    add = actions.add_parser(
        "add", help="add a project",
        description=f"Add a project. The admin's user token is read from ${TOKEN_VARIABLE} or, "
                    "in a terminal, asked for without echo; the callback secret from "
                    f"${SECRET_VARIABLE} or asked for (optional: `callback setup` sets a new "
                    "one). Neither is ever printed or logged.")
    add.add_argument("--id", required=True, type=identifier, dest="project_id",
                     help="the project's id (projects._id)")
    add.add_argument("--name", required=True, help="a human-readable name")
    add.add_argument("--group-id", required=True, type=positive_int,
                     help="the VK community's id (positive, as in club<N>)")
    add.set_defaults(handler=add_project)

    listing = actions.add_parser(
        "list", help="all projects, their refresh status and system posts",
        description="One line per project: community, whether a token and a callback secret "
                    "are set, the last refresh outcome per content type (ok / error / - for "
                    "never), and how many system posts are in each status.")
    listing.set_defaults(handler=list_projects)

    show = actions.add_parser(
        "show", help="one project in detail",
        description="A project's settings (secrets as set/unset), the last refresh of each "
                    "content type with its error, system posts by status, cached posts.")
    show.add_argument("project_id", metavar="PROJECT", help="the project's id")
    show.set_defaults(handler=show_project)


async def _secret_input(ctx: OpsContext, variable: str, question: str, *,
                        required: bool) -> str | None:
    if variable in ctx.environ:
        value = ctx.environ[variable]
    elif ctx.prompts.interactive():
        value = await asyncio.to_thread(ctx.prompts.hidden, question)
    elif required:
        raise UsageFailure(f"no {variable}: set it in the environment or run in a terminal "
                           "to be asked")
    else:
        return None
    value = value.strip()
    if required and not value:
        raise UsageFailure(f"{variable} must not be empty")
    return value or None


async def add_project(ctx: OpsContext, args: argparse.Namespace) -> int:
    token = await _secret_input(ctx, TOKEN_VARIABLE, "VK user token (input hidden): ",
                                required=True)
    secret = await _secret_input(
        ctx, SECRET_VARIABLE, "Callback secret (input hidden; empty: none yet): ", required=False)
    projects = ctx.db()[PROJECTS]
    # Several projects may plan for one community; each gets its own callback server.
    sharing = [str(document["_id"]) async for document in projects.find(
        {"vk_group_id": args.group_id}, projection={"_id": 1})]
    try:
        await projects.insert_one({
            "_id": args.project_id, "name": args.name, "vk_group_id": args.group_id,
            "vk_confirmation_code": "", "vk_callback_secret": secret, "vk_user_token": token,
        })
    except DuplicateKeyError:
        raise OpsFailure(f"project {args.project_id} already exists") from None
    ctx.say(f"project {args.project_id} added: community {args.group_id}, user token set, "
            f"callback secret {table.presence(secret)}")
    if sharing:
        ctx.say(f"community {args.group_id} is shared with: {', '.join(sorted(sharing))}")
    ctx.say(f"next: python -m tools.ops callback setup {args.project_id} "
            "--url https://<gateway>/api/callback")
    return EXIT_OK


async def _post_counts(ctx: OpsContext, project_id: str | None = None
                       ) -> dict[str, dict[str, int]]:
    """Per project, system posts per status."""
    match: Document = {} if project_id is None else {"project_id": project_id}
    cursor = await ctx.db()[SYSTEM_POSTS].aggregate([
        {"$match": match},
        {"$group": {"_id": {"project": "$project_id", "status": "$status"}, "n": {"$sum": 1}}},
    ])
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    async for group in cursor:
        counts[str(group["_id"].get("project"))][str(group["_id"].get("status"))] = group["n"]
    return counts


def _refresh(project: Document, content: ContentType) -> dict[str, Any] | None:
    status = (project.get("refresh_status") or {}).get(content.value)
    return status if isinstance(status, dict) else None


def _refresh_outcome(status: dict[str, Any] | None) -> str:
    if status is None:
        return table.EMPTY
    return "ok" if status.get("ok") else "error"


async def list_projects(ctx: OpsContext, _args: argparse.Namespace) -> int:
    projects = await ctx.db()[PROJECTS].find({}, sort=[("_id", 1)]).to_list()
    if not projects:
        ctx.say("no projects")
        return EXIT_OK
    counts = await _post_counts(ctx)
    headers = ["ID", "NAME", "GROUP", "TOKEN", "SECRET",
               *(content.value.upper() for content in ContentType), *STATUSES]
    rows = [[
        project["_id"], project.get("name"), project.get("vk_group_id"),
        table.presence(project.get("vk_user_token")), table.presence(project.get("vk_callback_secret")),
        *(_refresh_outcome(_refresh(project, content)) for content in ContentType),
        *(counts[str(project["_id"])].get(status, 0) for status in STATUSES),
    ] for project in projects]
    ctx.say(table.render(headers, rows))
    return EXIT_OK


async def show_project(ctx: OpsContext, args: argparse.Namespace) -> int:
    project = await ctx.project(args.project_id)
    counts = (await _post_counts(ctx, args.project_id))[args.project_id]
    cached = {content: await ctx.db()[content.collection].count_documents(
        {"project_id": args.project_id}) for content in ContentType}
    ctx.say(table.render(["FIELD", "VALUE"], [
        ["id", project["_id"]],
        ["name", project.get("name")],
        ["community", project.get("vk_group_id")],
        ["user token", table.presence(project.get("vk_user_token"))],
        ["callback secret", table.presence(project.get("vk_callback_secret"))],
        ["confirmation code", table.presence(project.get("vk_confirmation_code"))],
    ]))
    ctx.say()
    refreshes = [(content, _refresh(project, content)) for content in ContentType]
    ctx.say(table.render(["CONTENT", "REFRESH", "AT", "CACHED", "ERROR"], [
        [content.value, _refresh_outcome(status) if status else "never",
         status and status.get("at"), cached[content], status and status.get("error")]
        for content, status in refreshes]))
    ctx.say()
    ctx.say(table.render(["SYSTEM POSTS", "COUNT"],
                         [[status, counts.get(status, 0)] for status in STATUSES]))
    return EXIT_OK
