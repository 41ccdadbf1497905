"""The broker topology: every exchange, queue, binding and dead-letter route.

Declared by every service at start (idempotent), so any service can start first.

    {prefix}.callbacks  --callback-->        {prefix}.refresher.callbacks   (refresher)
    {prefix}.updates    --project.updated--> {prefix}.notifier.updates      (update_notifier)
    {prefix}.dead-letter --<queue name>-->   <queue name>.dlq               (parked, with reason)

Consuming queues are quorum queues (replicated, with a delivery count) whose
rejected or over-delivered messages go to the dead-letter exchange, routed by the
name of the queue they came from.
"""

from __future__ import annotations

from dataclasses import dataclass

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue

CALLBACK_ROUTING_KEY = "callback"
UPDATE_ROUTING_KEY = "project.updated"
# Safety net for messages that crash their consumer before it can decide (e.g. kill -9
# loops): the broker itself dead-letters them after this many deliveries.
BROKER_DELIVERY_LIMIT = 20


@dataclass(frozen=True, slots=True)
class ConsumingQueue:
    name: str
    exchange: str
    routing_key: str

    @property
    def dead_letter_queue(self) -> str:
        return f"{self.name}.dlq"


@dataclass(frozen=True, slots=True)
class Topology:
    """Names derived from one prefix, so deployments and test runs can share a broker."""

    prefix: str

    @property
    def callbacks_exchange(self) -> str:
        return f"{self.prefix}.callbacks"

    @property
    def updates_exchange(self) -> str:
        return f"{self.prefix}.updates"

    @property
    def dead_letter_exchange(self) -> str:
        return f"{self.prefix}.dead-letter"

    @property
    def refresher_queue(self) -> ConsumingQueue:
        return ConsumingQueue(f"{self.prefix}.refresher.callbacks", self.callbacks_exchange,
                              CALLBACK_ROUTING_KEY)

    @property
    def notifier_queue(self) -> ConsumingQueue:
        return ConsumingQueue(f"{self.prefix}.notifier.updates", self.updates_exchange,
                              UPDATE_ROUTING_KEY)

    @property
    def consuming_queues(self) -> tuple[ConsumingQueue, ...]:
        return (self.refresher_queue, self.notifier_queue)

    def queue(self, name: str) -> ConsumingQueue:
        for queue in self.consuming_queues:
            if name in (queue.name, queue.dead_letter_queue):
                return queue
        raise KeyError(f"no such queue in the topology: {name}")


@dataclass(frozen=True, slots=True)
class Declared:
    """Handles on the declared exchanges and queues of one channel, by name."""

    exchanges: dict[str, AbstractExchange]
    queues: dict[str, AbstractQueue]


async def declare_topology(channel: AbstractChannel, topology: Topology) -> Declared:
    """Declare everything (idempotent) on the channel.

    On a robust channel the declarations (and consumers of the returned queues) are
    replayed after a reconnect.
    """
    exchanges = {
        name: await channel.declare_exchange(name, aio_pika.ExchangeType.DIRECT, durable=True)
        for name in (topology.callbacks_exchange, topology.updates_exchange,
                     topology.dead_letter_exchange)
    }
    queues: dict[str, AbstractQueue] = {}
    for spec in topology.consuming_queues:
        queue = await channel.declare_queue(spec.name, durable=True, arguments={
            "x-queue-type": "quorum",
            "x-dead-letter-exchange": topology.dead_letter_exchange,
            "x-dead-letter-routing-key": spec.name,
            "x-delivery-limit": BROKER_DELIVERY_LIMIT,
        })
        await queue.bind(exchanges[spec.exchange], spec.routing_key)
        parked = await channel.declare_queue(spec.dead_letter_queue, durable=True,
                                             arguments={"x-queue-type": "quorum"})
        await parked.bind(exchanges[topology.dead_letter_exchange], spec.name)
        queues[spec.name] = queue
        queues[spec.dead_letter_queue] = parked
    return Declared(exchanges, queues)


async def delete_topology(url: str, topology: Topology) -> None:
    """Delete every queue and exchange of ``topology`` (idempotent).

    For test runs and benchmarks that share a broker: leaked quorum queues pile up
    (each holds files open) until the broker refuses connections.
    """
    connection = await aio_pika.connect(url, timeout=10)
    async with connection:
        channel = await connection.channel()
        for queue in topology.consuming_queues:
            for name in (queue.name, queue.dead_letter_queue):
                await channel.queue_delete(name)
        for exchange in (topology.callbacks_exchange, topology.updates_exchange,
                         topology.dead_letter_exchange):
            await channel.exchange_delete(exchange)
