"""One sandbox instance: its state and the services acting on it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiohttp import web

from .call_log import CallLog
from .config import SandboxConfig
from .delivery import CallbackDispatcher, Sleep
from .delivery_log import DeliveryLog
from .faults import FaultBook
from .rate_limit import SlidingWindowRateLimiter
from .state import SandboxState
from .wall_service import WallService


@dataclass
class Sandbox:
    config: SandboxConfig
    state: SandboxState
    faults: FaultBook
    calls: CallLog
    deliveries: DeliveryLog
    dispatcher: CallbackDispatcher
    walls: WallService
    rate_limiter: SlidingWindowRateLimiter

    @classmethod
    def create(cls, config: SandboxConfig, *, sleep: Sleep = asyncio.sleep) -> Sandbox:
        state = SandboxState()
        faults = FaultBook()
        deliveries = DeliveryLog(config.log_capacity)
        dispatcher = CallbackDispatcher(config, state, faults, deliveries, sleep=sleep)
        return cls(
            config=config,
            state=state,
            faults=faults,
            calls=CallLog(config.log_capacity),
            deliveries=deliveries,
            dispatcher=dispatcher,
            walls=WallService(state, dispatcher),
            rate_limiter=SlidingWindowRateLimiter(),
        )


# How request handlers and background tasks find the instance.
SANDBOX_KEY = web.AppKey("sandbox", Sandbox)
