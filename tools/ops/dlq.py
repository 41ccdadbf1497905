"""``dlq list|replay|drop``: messages the consumers dead-lettered (see :mod:`shared.broker`).

``replay`` republishes a parked message to the exchange and routing key of its queue
(:mod:`shared.topology`) with publisher confirms and acks it in the DLQ only after
the confirm; a message that is not a valid message of its queue cannot be replayed
and stays parked. ``drop`` deletes messages after a question (or ``--yes``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import Callable
from datetime import UTC, datetime

from pydantic import ValidationError

from shared.broker import JSON, PublishFailed
from tools.ops import table
from tools.ops.arguments import identifier, positive_int
from tools.ops.context import OpsContext
from tools.ops.dlq_reader import MAX_READ, DeadLetterQueue, Source, sources
from tools.ops.failures import EXIT_OK, OpsFailure
from tools.ops.parked import REPLAY_COUNT_HEADER, REPLAYED_AT_HEADER, Parked

QUEUE_NAMES = ("refresher", "notifier")
DEFAULT_LIMIT = 20
REASON_WIDTH = 100
BODY_WIDTH = 60


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "dlq", help="inspect, replay or drop dead-lettered messages",
        description="Dead-letter queues ({prefix}.refresher.callbacks.dlq, "
                    "{prefix}.notifier.updates.dlq). Messages are read without being consumed: "
                    "whatever a command does not replay or drop goes back, in order. "
                    f"A command reads at most {MAX_READ} messages per queue.")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    listing = actions.add_parser(
        "list", help="show dead-lettered messages (nothing is removed)",
        description="Show parked messages, oldest first: when, correlation id, original queue, "
                    "the reason (x-dead-letter-reason, or the broker's x-death reason) and the "
                    "start of the body.")
    _queue_option(listing)
    listing.add_argument("--limit", type=positive_int, default=DEFAULT_LIMIT, metavar="N",
                         help=f"show at most N messages per queue (default {DEFAULT_LIMIT})")
    listing.set_defaults(handler=list_messages)

    replay = actions.add_parser(
        "replay", help="send messages back to their queue, then remove them from the DLQ",
        description="Republish the selected messages to their queue's exchange and routing "
                    "key with publisher confirms; each is removed from the DLQ only after its "
                    "confirm. Replay once the cause is fixed (e.g. VK reachable again). "
                    "Exits 1 if a selected message could not be replayed (it stays parked).")
    _queue_option(replay)
    _selection(replay)
    replay.set_defaults(handler=replay_messages)

    drop = actions.add_parser(
        "drop", help="delete messages from the DLQ for good",
        description="Show the selected messages, ask for confirmation (or --yes), then delete "
                    "them. Exits 1 if not confirmed.")
    _queue_option(drop)
    _selection(drop)
    drop.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    drop.set_defaults(handler=drop_messages)


def _queue_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--queue", choices=QUEUE_NAMES,
                        help="only this consumer's DLQ (default: both)")


def _selection(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--all", action="store_true", help="every message of the DLQ(s)")
    group.add_argument("--correlation-id", action="append", type=identifier, metavar="ID",
                       dest="correlation_ids",
                       help="messages with this correlation id (repeatable)")


def _chosen(ctx: OpsContext, args: argparse.Namespace) -> list[Source]:
    known = sources(ctx.topology)
    return [known[args.queue]] if args.queue else [known[name] for name in QUEUE_NAMES]


def _selector(args: argparse.Namespace) -> Callable[[Parked], bool]:
    if args.all:
        return lambda _parked: True
    wanted = set(args.correlation_ids)
    return lambda parked: parked.correlation_id in wanted


def _rows(messages: list[Parked]) -> list[list[object]]:
    return [[parked.dead_lettered_at, parked.correlation_id, parked.original_queue,
             table.shorten(parked.reason, REASON_WIDTH), parked.preview(BODY_WIDTH)]
            for parked in messages]


HEADERS = ["DEAD-LETTERED AT", "CORRELATION ID", "ORIGINAL QUEUE", "REASON", "BODY"]


async def list_messages(ctx: OpsContext, args: argparse.Namespace) -> int:
    broker = await ctx.broker()
    for index, source in enumerate(_chosen(ctx, args)):
        async with DeadLetterQueue(broker, source) as dlq:
            if index:
                ctx.say()
            ctx.say(f"{dlq.name}: {dlq.total} message(s)")
            shown = dlq.messages[:args.limit]
            if shown:
                ctx.say(table.render(HEADERS, _rows(shown)))
            if dlq.total > len(shown):
                ctx.say(f"… {dlq.total - len(shown)} more (--limit)")
    return EXIT_OK


def _nothing_selected(args: argparse.Namespace) -> int:
    if args.all:
        return EXIT_OK
    raise OpsFailure("no dead-lettered message with correlation id "
                     + ", ".join(args.correlation_ids))


async def replay_messages(ctx: OpsContext, args: argparse.Namespace) -> int:
    broker = await ctx.broker()
    selected = _selector(args)
    matched, failed = 0, 0
    for source in _chosen(ctx, args):
        async with DeadLetterQueue(broker, source) as dlq:
            for parked in filter(selected, dlq.messages):
                matched += 1
                label = f"{parked.correlation_id or '(no correlation id)'} from {dlq.name}"
                try:
                    for event in parked.events:  # a batch the broker parked whole: each one
                        source.model.model_validate_json(event)
                except ValidationError as exc:
                    failed += 1
                    ctx.warn(f"not replayed {label}: not a valid {source.model.kind} "
                             f"({exc.errors()[0]['msg']}); drop it instead")
                    continue
                try:
                    await broker.publish_body(
                        parked.message.body, kind=source.model.kind,
                        correlation_id=parked.correlation_id or "",
                        content_type=parked.message.content_type or JSON,
                        exchange=source.queue.exchange, routing_key=source.queue.routing_key,
                        headers={REPLAYED_AT_HEADER: datetime.now(UTC).isoformat(),
                                 REPLAY_COUNT_HEADER: parked.replays + 1})
                except PublishFailed as exc:
                    failed += 1
                    ctx.warn(f"not replayed {label}: {exc}")
                    continue
                await dlq.ack(parked)
                ctx.say(f"replayed {label} to {source.queue.exchange} "
                        f"({source.queue.routing_key})")
    if not matched:
        ctx.say("nothing to replay")
        return _nothing_selected(args)
    if failed:
        raise OpsFailure(f"{failed} of {matched} message(s) not replayed; they stay in the DLQ")
    return EXIT_OK


async def drop_messages(ctx: OpsContext, args: argparse.Namespace) -> int:
    broker = await ctx.broker()
    selected = _selector(args)
    async with contextlib.AsyncExitStack() as stack:
        chosen: list[tuple[DeadLetterQueue, Parked]] = []
        for source in _chosen(ctx, args):
            dlq = await stack.enter_async_context(DeadLetterQueue(broker, source))
            chosen.extend((dlq, parked) for parked in filter(selected, dlq.messages))
        if not chosen:
            ctx.say("nothing to drop")
            return _nothing_selected(args)
        ctx.say(table.render(["DLQ", *HEADERS],
                             [[dlq.name, *row] for (dlq, _), row in
                              zip(chosen, _rows([parked for _, parked in chosen]), strict=True)]))
        question = f"Drop these {len(chosen)} message(s) for good?"
        if not args.yes and not await asyncio.to_thread(ctx.prompts.confirm, question):
            raise OpsFailure("not confirmed; nothing dropped")
        for dlq, parked in chosen:
            await dlq.ack(parked)
        ctx.say(f"dropped {len(chosen)} message(s)")
    return EXIT_OK

