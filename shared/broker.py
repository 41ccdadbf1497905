"""RabbitMQ: durable publishing with confirms, and consumers with a named ack policy.

Delivery semantics, plainly:

* **Publishing** uses publisher confirms, persistent messages and ``mandatory``
  routing with returns raising, so a successful :meth:`Broker.publish` means the
  message is stored by the broker in a queue. Anything else raises
  :class:`PublishFailed`.
* **Batches**: one AMQP message may carry several messages of one kind, each
  serialised on its own line (``application/x-ndjson``; JSON never holds a raw
  newline). The gateway's group commit sends them (one confirm for many callbacks);
  the consumer settles each line like a message of its own, below. A batch of one
  is sent as a plain message (``application/json``), as before batches existed.
* **Consuming** is at-least-once. :class:`AckPolicy` decides what happens to a
  delivery (for a batch: to each of its messages):

  - the handler returns            → ack;
  - the body is not a valid message → dead-lettered at once, with the reason;
  - the handler raises :class:`DeadLetter` → dead-lettered at once, with the reason;
  - the handler raises anything else → the message is put back after a backoff
    delay, and dead-lettered with the last error once ``max_attempts`` deliveries
    have failed.

  A batch is acked once every one of its messages is done or parked, and parked
  messages go to the DLQ *alone* (a plain message each, with its own reason), so an
  operator sees and replays events, not batches. If one message of a batch must be
  retried, the whole batch is put back (its other messages are redone: handlers are
  idempotent), and nothing of it is parked before that last delivery decides.

  A consumer that dies mid-message (crash, lost connection) leaves it unacked, so
  the broker redelivers it; handlers must therefore be idempotent.

* **A cluster**: ``AMQP_URL`` may list several nodes; the connection goes to whichever
  answers (``shared/cluster_connection.py``). When a quorum queue's leader node dies,
  RabbitMQ 3.10 refuses (``Basic.Nack``) for good every publish of a channel whose
  first publish to that queue came before the new leader was recorded: its queue client
  keeps asking the dead node (``rabbit_fifo_client:enqueue`` on ``{badrpc, nodedown}``)
  while a new channel goes to the new leader. So a nack replaces the publishing
  channel (at most once per :data:`CHANNEL_RENEWAL_INTERVAL_SECONDS`); the nacked
  publish itself still fails (the gateway answers 503, VK sends it again).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import aio_pika
import aiormq
import structlog
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)
from aio_pika.exceptions import DeliveryError, PublishError
from pydantic import ValidationError

from shared.cluster_connection import CONNECT_TIMEOUT_SECONDS, connect_cluster
from shared.logging import redact_text
from shared.messages import BrokerMessage, CallbackEvent, ProjectUpdated
from shared.retry import backoff_seconds
from shared.tasks import cancel_and_wait
from shared.topology import (
    CALLBACK_ROUTING_KEY,
    UPDATE_ROUTING_KEY,
    ConsumingQueue,
    Topology,
    declare_topology,
)

log = structlog.get_logger(__name__)

MessageT = TypeVar("MessageT", bound=BrokerMessage)
Handler = Callable[[MessageT], Awaitable[None]]

JSON = "application/json"
BATCH = "application/x-ndjson"  # a batch: one serialised message per line
# A nacked publish replaces the publishing channel, at most this often (the module's
# docstring says why); the replaced one is closed once its publishes in flight are settled.
CHANNEL_RENEWAL_INTERVAL_SECONDS = 1.0
RETIRED_CHANNEL_GRACE_SECONDS = 10.0
REASON_HEADER = "x-dead-letter-reason"
ORIGINAL_QUEUE_HEADER = "x-original-queue"


class PublishFailed(Exception):
    """The broker did not confirm the message (down, unroutable, or too slow)."""


class DeadLetter(Exception):
    """Raised by a handler: this message can never succeed; park it with the reason."""


@dataclass(frozen=True, slots=True)
class AckPolicy:
    """How a consumer settles deliveries; see the module docstring."""

    max_attempts: int = 5
    prefetch: int = 32
    shutdown_grace_seconds: float = 10.0


def delivery_attempt(message: AbstractIncomingMessage) -> int:
    """1 for a first delivery; quorum queues count earlier failed deliveries in a header."""
    count = (message.headers or {}).get("x-delivery-count", 0)
    return (int(count) if isinstance(count, int | str) and str(count).isdigit() else 0) + 1


class Broker:
    """One robust connection per process: a confirming publisher and any consumers."""

    def __init__(self, url: str, topology: Topology, *, client_name: str) -> None:
        self.url = url
        self.topology = topology
        self.client_name = client_name
        self._connection: AbstractRobustConnection | None = None
        self._publish_channel: AbstractChannel | None = None
        self._exchanges: dict[str, AbstractExchange] = {}
        self._channel_opened_at = 0.0
        self._renewing = False
        self._channel_tasks: set[asyncio.Task[None]] = set()
        self._consumers: list[Consumer[Any]] = []

    async def connect(self) -> None:
        """Connect (robustly: it reconnects by itself) and declare the whole topology."""
        # Bounded: a broker that accepts TCP but never answers must fail the start, not hang.
        self._connection = await connect_cluster(
            self.url, client_name=f"{self.client_name}-{os.getpid()}")
        await self._open_publish_channel()

    async def _open_publish_channel(self) -> None:
        channel = await self.connection.channel(publisher_confirms=True, on_return_raises=True)
        self._exchanges = (await declare_topology(channel, self.topology)).exchanges
        self._publish_channel = channel
        self._channel_opened_at = time.monotonic()

    def _renew_publish_channel(self) -> None:
        """After a nack: publish on a new channel from now on (see the module docstring)."""
        if self._renewing or (time.monotonic() - self._channel_opened_at
                              < CHANNEL_RENEWAL_INTERVAL_SECONDS):
            return
        self._renewing = True
        task = asyncio.create_task(self._replace_publish_channel())
        self._channel_tasks.add(task)
        task.add_done_callback(self._channel_tasks.discard)

    async def _replace_publish_channel(self) -> None:
        retired = self._publish_channel
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_SECONDS):
                await self._open_publish_channel()
        except Exception as exc:  # the connection is down: its own recovery takes over
            log.warning("broker_publish_channel_not_renewed", error=_error_text(exc))
            return
        finally:
            self._renewing = False
        log.warning("broker_publish_channel_renewed", reason="publish nacked")
        await asyncio.sleep(RETIRED_CHANNEL_GRACE_SECONDS)
        if retired is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):
                    await retired.close()

    @property
    def connection(self) -> AbstractRobustConnection:
        if self._connection is None:
            raise RuntimeError("Broker.connect() has not been called")
        return self._connection

    @property
    def is_connected(self) -> bool:
        return self._connection is not None and not self._connection.is_closed and (
            self._publish_channel is not None and not self._publish_channel.is_closed
        )

    async def publish(self, message: BrokerMessage, *, exchange: str, routing_key: str,
                      timeout: float = 5.0, headers: dict[str, Any] | None = None) -> None:
        """Publish durably; return only once the broker confirmed it (else PublishFailed)."""
        await self.publish_body(message.model_dump_json().encode(), kind=message.kind,
                                correlation_id=message.correlation_id, exchange=exchange,
                                routing_key=routing_key, timeout=timeout, headers=headers)

    async def publish_body(self, body: bytes, *, kind: str, correlation_id: str, exchange: str,
                           routing_key: str, content_type: str = JSON, timeout: float = 5.0,
                           headers: dict[str, Any] | None = None) -> None:
        """:meth:`publish` of a body serialised already (a message, or a batch of them)."""
        target = self._exchanges.get(exchange)
        if target is None:
            raise PublishFailed(f"unknown exchange {exchange}")
        amqp_message = aio_pika.Message(
            body, content_type=content_type, delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            correlation_id=correlation_id, type=kind, headers=headers or {},
            timestamp=datetime.now(UTC),
        )
        try:
            async with asyncio.timeout(timeout):
                confirmation = await target.publish(amqp_message, routing_key, mandatory=True)
        except TimeoutError as exc:
            raise PublishFailed(f"no confirm within {timeout}s") from exc
        except PublishError as exc:  # returned: unroutable
            raise PublishFailed(f"{type(exc).__name__}: {exc}") from exc
        except DeliveryError as exc:  # nacked
            self._renew_publish_channel()
            raise PublishFailed(f"{type(exc).__name__}: {exc}") from exc
        except Exception as exc:  # connection lost, channel closed
            raise PublishFailed(f"{type(exc).__name__}: {exc}") from exc
        if not isinstance(confirmation, aiormq.spec.Basic.Ack):
            self._renew_publish_channel()
            raise PublishFailed(f"not confirmed: {type(confirmation).__name__}")

    async def publish_callback(self, event: CallbackEvent, *, timeout: float = 5.0) -> None:
        await self.publish(event, exchange=self.topology.callbacks_exchange,
                           routing_key=CALLBACK_ROUTING_KEY, timeout=timeout)

    async def publish_callbacks(self, events: Sequence[bytes], *, correlation_id: str,
                                timeout: float = 5.0) -> None:
        """Publish serialised :class:`CallbackEvent` s as one message, one confirm for all
        (a batch; a single event goes as a plain message). ``correlation_id``: the batch's."""
        await self.publish_body(
            b"\n".join(events), kind=CallbackEvent.kind, correlation_id=correlation_id,
            content_type=BATCH if len(events) > 1 else JSON,
            exchange=self.topology.callbacks_exchange, routing_key=CALLBACK_ROUTING_KEY,
            timeout=timeout)

    async def publish_update(self, update: ProjectUpdated, *, timeout: float = 5.0) -> None:
        await self.publish(update, exchange=self.topology.updates_exchange,
                           routing_key=UPDATE_ROUTING_KEY, timeout=timeout)

    async def consume(self, queue: ConsumingQueue, model: type[MessageT],
                      handler: Handler[MessageT], policy: AckPolicy = AckPolicy()) -> Consumer[MessageT]:
        consumer = Consumer(self, queue, model, handler, policy)
        await consumer.start()
        self._consumers.append(consumer)
        return consumer

    async def close(self) -> None:
        """Stop consumers (letting in-flight handlers finish), then close the connection."""
        for consumer in self._consumers:
            await consumer.stop()
        await cancel_and_wait(*self._channel_tasks)
        if self._connection is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):
                    await self._connection.close()


@dataclass(frozen=True, slots=True)
class Parking:
    """A message to dead-letter, and why."""

    reason: str
    correlation_id: str | None = None


def _error_text(exc: Exception) -> str:
    return redact_text(f"{type(exc).__name__}: {exc}")


def _correlation_id_of(body: bytes) -> str | None:
    """The correlation id of a message that did not validate, if it has a readable one."""
    try:
        value = json.loads(body).get("correlation_id")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) and value else None


class Consumer(Generic[MessageT]):
    """Feeds one queue's messages to a plain typed handler under an :class:`AckPolicy`."""

    def __init__(self, broker: Broker, queue: ConsumingQueue, model: type[MessageT],
                 handler: Handler[MessageT], policy: AckPolicy) -> None:
        self.broker = broker
        self.queue = queue
        self.model = model
        self.handler = handler
        self.policy = policy
        self._in_flight: set[asyncio.Task[None]] = set()
        self._channel: AbstractChannel | None = None
        self._consumer_tag: str | None = None
        self._queue: AbstractQueue | None = None
        self._dead_letter_exchange: AbstractExchange | None = None

    async def start(self) -> None:
        channel = await self.broker.connection.channel(publisher_confirms=True)
        await channel.set_qos(prefetch_count=self.policy.prefetch)
        declared = await declare_topology(channel, self.broker.topology)
        self._dead_letter_exchange = declared.exchanges[self.broker.topology.dead_letter_exchange]
        self._queue = declared.queues[self.queue.name]
        self._channel = channel
        self._consumer_tag = await self._queue.consume(self._on_message)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        # Handlers run as tasks so a slow one does not block the others (prefetch > 1).
        task = asyncio.create_task(self._settle(message))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    async def _settle(self, message: AbstractIncomingMessage) -> None:
        attempt = delivery_attempt(message)
        if message.content_type == BATCH:
            bodies = message.body.split(b"\n")
            outcomes = await asyncio.gather(*(self._handle(body, attempt) for body in bodies))
        else:
            bodies, outcomes = [message.body], [await self._handle(message.body, attempt)]
        failures = [outcome for outcome in outcomes if isinstance(outcome, Exception)]
        if failures and attempt < self.policy.max_attempts:
            delay = backoff_seconds(attempt)
            log.warning("message_failed_will_retry", error=_error_text(failures[0]),
                        failed=len(failures), messages=len(bodies),
                        retry_in_seconds=round(delay, 3), queue=self.queue.name,
                        correlation_id=message.correlation_id)
            await asyncio.sleep(delay)
            await message.nack(requeue=True)
            return
        for body, outcome in zip(bodies, outcomes, strict=True):
            if isinstance(outcome, Exception):
                outcome = Parking(f"gave up after {attempt} attempts: {_error_text(outcome)}")
            if outcome is not None:
                await self._dead_letter(message, body if len(bodies) > 1 else None, outcome)
        await message.ack()

    async def _handle(self, body: bytes, attempt: int) -> Parking | Exception | None:
        """One message (of a batch, perhaps): None when done, why to park it, or the error
        that makes it worth another try."""
        try:
            decoded = self.model.model_validate_json(body)
        except ValidationError as exc:
            error = exc.errors()[0]
            return Parking(f"malformed {self.model.kind}: {error['msg']} at {error['loc']}")
        with structlog.contextvars.bound_contextvars(
            correlation_id=decoded.correlation_id, queue=self.queue.name, attempt=attempt
        ):
            try:
                await self.handler(decoded)
            except DeadLetter as exc:
                return Parking(str(exc), decoded.correlation_id)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                return exc
        return None

    async def _dead_letter(self, message: AbstractIncomingMessage, part: bytes | None,
                           parking: Parking) -> None:
        """Park the message — or ``part``, one message of the batch — on the queue's DLQ
        with the reason (the caller acks the original)."""
        assert self._dead_letter_exchange is not None
        reason = redact_text(parking.reason)
        headers = dict(message.headers or {})
        headers.update({REASON_HEADER: reason, ORIGINAL_QUEUE_HEADER: self.queue.name,
                        "x-dead-lettered-at": datetime.now(UTC).isoformat()})
        correlation_id = message.correlation_id
        if part is not None:
            correlation_id = parking.correlation_id or _correlation_id_of(part)
        parked = aio_pika.Message(
            message.body if part is None else part, headers=headers,
            content_type=message.content_type if part is None else JSON,
            correlation_id=correlation_id, type=message.type,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        await self._dead_letter_exchange.publish(parked, self.queue.name, mandatory=True)
        log.error("message_dead_lettered", reason=reason, queue=self.queue.name,
                  correlation_id=correlation_id)

    async def stop(self) -> None:
        """Stop taking messages; give in-flight handlers a grace period, then cancel them."""
        channel_open = self._channel is not None and not self._channel.is_closed
        if channel_open and self._queue is not None and self._consumer_tag is not None:
            # Bounded: on a robust channel, cancel would wait for a reconnect that may
            # never come (broker down during shutdown).
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):
                    await self._queue.cancel(self._consumer_tag)
        if self._in_flight:
            _, pending = await asyncio.wait(self._in_flight, timeout=self.policy.shutdown_grace_seconds)
            for task in pending:
                task.cancel()
        if self._channel is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):
                    await self._channel.close()
