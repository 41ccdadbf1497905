"""``posts list|requeue``: system posts by status, and sending failed ones again."""

from __future__ import annotations

import argparse

from bson import ObjectId

from shared.documents import PostStatus
from shared.messages import ProjectUpdated, UpdateReason, new_correlation_id
from shared.mongo import SYSTEM_POSTS, Document
from tools.ops import table
from tools.ops.arguments import identifier, positive_int
from tools.ops.context import OpsContext
from tools.ops.failures import EXIT_OK, EXPECTED, OpsFailure, UsageFailure, describe
from tools.ops.requeue import NEEDS_FORCE, REQUEUEABLE, refusal, requeue

STATUSES = tuple(status.value for status in PostStatus)
DEFAULT_LIMIT = 100
ERROR_WIDTH = 80


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "posts", help="list system posts; requeue failed ones",
        description="System posts (system_posts) published by the post tracker.")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    listing = actions.add_parser(
        "list", help="system posts with status, publication date and error",
        description="System posts, by publication date: status, attempts, VK post id and the "
                    "error (or, for a pending post waiting for a retry, the last one).")
    listing.add_argument("--project", type=identifier, metavar="ID", help="only this project")
    listing.add_argument("--status", choices=STATUSES, help="only posts in this status")
    listing.add_argument("--limit", type=positive_int, default=DEFAULT_LIMIT, metavar="N",
                         help=f"show at most N posts (default {DEFAULT_LIMIT})")
    listing.set_defaults(handler=list_posts)

    again = actions.add_parser(
        "requeue", help="move error / possible_error posts back to pending_publication",
        description="Move failed posts back to pending_publication: the error and the VK post "
                    "id are cleared, the retry budget and claim reset, the failure kept as "
                    "last_error. The tracker sends them at once if their publication date has "
                    "passed. Name posts by id, or all posts of one status of a project. "
                    f"A {NEEDS_FORCE} post may already be on the wall (VK's answer was lost, or "
                    "it was not found there in time): requeueing it can publish it twice, so it "
                    "needs --force — check the wall first.")
    again.add_argument("post_ids", nargs="*", metavar="POST_ID", help="system post ids (_id)")
    again.add_argument("--project", type=identifier, metavar="ID",
                       help="with --status: every post of this project in that status")
    again.add_argument("--status", choices=REQUEUEABLE,
                       help="with --project: which failed posts to requeue")
    again.add_argument("--force", action="store_true",
                       help=f"also requeue {NEEDS_FORCE} posts (they may be published twice)")
    again.set_defaults(handler=requeue_posts)


def _error_cell(document: Document) -> str | None:
    if document.get("error"):
        return table.shorten(str(document["error"]), ERROR_WIDTH)
    if document.get("last_error"):
        return table.shorten(f"last: {document['last_error']}", ERROR_WIDTH)
    return None


async def list_posts(ctx: OpsContext, args: argparse.Namespace) -> int:
    query: Document = {}
    if args.project:
        await ctx.project(args.project)
        query["project_id"] = args.project
    if args.status:
        query["status"] = args.status
    posts = ctx.db()[SYSTEM_POSTS]
    total = await posts.count_documents(query)
    found = await posts.find(query, sort=[("publication_date", 1), ("_id", 1)],
                             limit=args.limit).to_list()
    ctx.say(f"{total} system post(s)")
    if found:
        ctx.say(table.render(
            ["ID", "PROJECT", "STATUS", "PUBLICATION DATE", "ATTEMPTS", "VK POST", "ERROR"],
            [[post["_id"], post.get("project_id"), post.get("status"), post.get("publication_date"),
              post.get("attempts"), post.get("vk_post_id"), _error_cell(post)] for post in found]))
    if total > len(found):
        ctx.say(f"… {total - len(found)} more (--limit)")
    return EXIT_OK


def _id_candidates(text: str) -> list[object]:
    """``_id`` is an ObjectId or a string; a 24-hex-digit id may be either."""
    return [ObjectId(text), text] if ObjectId.is_valid(text) else [text]


def _check_selection(args: argparse.Namespace) -> None:
    by_project = args.project is not None or args.status is not None
    if args.post_ids and by_project:
        raise UsageFailure("name posts by id or by --project and --status, not both")
    if not args.post_ids and not (args.project and args.status):
        raise UsageFailure("name the posts: POST_ID … or --project ID --status STATUS")
    if args.status == NEEDS_FORCE and not args.force:
        raise UsageFailure(f"{NEEDS_FORCE} posts may already be on the wall; check it, then "
                           "add --force to requeue them")


async def _selected(ctx: OpsContext, args: argparse.Namespace) -> tuple[list[Document], list[str]]:
    posts = ctx.db()[SYSTEM_POSTS]
    if not args.post_ids:
        await ctx.project(args.project)
        query = {"project_id": args.project, "status": args.status}
        return await posts.find(query, sort=[("publication_date", 1), ("_id", 1)]).to_list(), []
    documents: list[Document] = []
    problems: list[str] = []
    for text in dict.fromkeys(args.post_ids):
        document = await posts.find_one({"_id": {"$in": _id_candidates(text)}})
        if document is None:
            problems.append(f"no system post {text}")
        else:
            documents.append(document)
    return documents, problems


async def _announce(ctx: OpsContext, correlation_ids: dict[str, str]) -> str | None:
    """Tell the frontend, as the tracker does for each change; why that failed, if it did."""
    try:
        broker = await ctx.broker()
        for project_id, correlation_id in correlation_ids.items():
            await broker.publish_update(ProjectUpdated(
                project_id=project_id, reason=UpdateReason.SYSTEM_POST, correlation_id=correlation_id))
    except EXPECTED as exc:
        return (f"requeued, but announcing it to the frontend failed ({describe(exc)}); it "
                "sees the change with the project's next update")
    return None


async def requeue_posts(ctx: OpsContext, args: argparse.Namespace) -> int:
    _check_selection(args)
    documents, problems = await _selected(ctx, args)
    posts = ctx.db()[SYSTEM_POSTS]
    announce: dict[str, str] = {}
    for document in documents:
        if (reason := refusal(document, force=args.force)) is not None:
            problems.append(reason)
        elif await requeue(posts, document):
            ctx.say(f"requeued {document['_id']} ({document['status']} → "
                    f"{PostStatus.PENDING.value})")
            announce.setdefault(str(document["project_id"]),
                                document.get("correlation_id") or new_correlation_id())
        else:
            problems.append(f"post {document['_id']} changed meanwhile; not requeued")
    if not documents and not problems:
        ctx.say(f"no {args.status} posts in project {args.project}")
    if announce and (failure := await _announce(ctx, announce)) is not None:
        problems.append(failure)
    if len(problems) == 1:
        raise OpsFailure(problems[0])
    for problem in problems:
        ctx.warn(problem)
    if problems:
        raise OpsFailure(f"{len(problems)} post(s) not requeued")
    return EXIT_OK
