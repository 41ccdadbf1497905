"""The record of Callback API deliveries: one entry per (event, server), with every attempt."""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class DeliveryAttempt:
    at: float  # unix time the request was sent
    status: int | None  # HTTP status of the reply; None when there was none (connection error)
    retry_counter: int | None  # the X-Retry-Counter header sent; None on the first try
    body: str  # the reply body (cut), or what went wrong


@dataclass
class Delivery:
    event_id: str
    type: str
    group_id: int
    server_id: int
    attempts: list[DeliveryAttempt] = field(default_factory=list)
    delivered: bool = False
    gave_up: bool = False

    @property
    def finished(self) -> bool:
        return self.delivered or self.gave_up

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class DeliveryLog:
    def __init__(self, capacity: int) -> None:
        self._deliveries: deque[Delivery] = deque(maxlen=capacity)

    def add(self, delivery: Delivery) -> Delivery:
        self._deliveries.append(delivery)
        return delivery

    def deliveries(
        self, event_id: str | None = None, event_type: str | None = None,
        group_id: int | None = None,
    ) -> list[Delivery]:
        return [
            delivery
            for delivery in self._deliveries
            if (event_id is None or delivery.event_id == event_id)
            and (event_type is None or delivery.type == event_type)
            and (group_id is None or delivery.group_id == group_id)
        ]

    def clear(self) -> None:
        self._deliveries.clear()
