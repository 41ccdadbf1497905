"""Reading a dead-letter queue without losing anything: take, look, then ack or give back.

AMQP has no "peek": messages are taken with ``basic.get`` and no ack, held while the
command looks at them, and at the end every message not acked (replayed or dropped)
is given back with ``basic.nack(requeue=True)``, in the order it was read. If the
command dies, the broker gives them back itself when the channel closes. Each reading
counts as a delivery in the quorum queue's ``x-delivery-count``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from aio_pika.abc import AbstractChannel

from shared.broker import Broker
from shared.messages import BrokerMessage, CallbackEvent, ProjectUpdated
from shared.topology import ConsumingQueue, Topology, declare_topology
from tools.ops.parked import Parked

# A DLQ is for exceptions; a command reads at most this many messages of one.
MAX_READ = 10_000
GET_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Source:
    """A consuming queue as the operator names it, and the message model it carries."""

    name: str
    queue: ConsumingQueue
    model: type[BrokerMessage]


def sources(topology: Topology) -> dict[str, Source]:
    return {
        "refresher": Source("refresher", topology.refresher_queue, CallbackEvent),
        "notifier": Source("notifier", topology.notifier_queue, ProjectUpdated),
    }


class DeadLetterQueue:
    """``async with DeadLetterQueue(broker, source) as dlq:`` — ``dlq.messages`` are held."""

    def __init__(self, broker: Broker, source: Source) -> None:
        self.broker = broker
        self.source = source
        self.messages: list[Parked] = []
        self.total = 0  # messages ready in the queue when it was read
        self._channel: AbstractChannel | None = None
        self._settled: set[int] = set()

    @property
    def name(self) -> str:
        return self.source.queue.dead_letter_queue

    async def __aenter__(self) -> Self:
        self._channel = await self.broker.connection.channel()
        try:
            await self._read(self._channel)
        except BaseException as exc:
            await self.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        return self

    async def _read(self, channel: AbstractChannel) -> None:
        declared = await declare_topology(channel, self.broker.topology)
        queue = declared.queues[self.name]
        self.total = queue.declaration_result.message_count or 0
        # Only what was there at the start: messages parked meanwhile (a replay failing
        # again) wait for the next command.
        for _ in range(min(self.total, MAX_READ)):
            message = await queue.get(no_ack=False, fail=False, timeout=GET_TIMEOUT_SECONDS)
            if message is None:
                break
            self.messages.append(Parked.of(message, self.source.queue))

    async def ack(self, parked: Parked) -> None:
        """Remove the message from the DLQ for good."""
        await parked.message.ack()
        self._settled.add(id(parked))

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        traceback: TracebackType | None) -> None:
        try:
            for parked in self.messages:
                if id(parked) not in self._settled:
                    await parked.message.nack(requeue=True)
        finally:
            if self._channel is not None:
                with contextlib.suppress(Exception):
                    await self._channel.close()
