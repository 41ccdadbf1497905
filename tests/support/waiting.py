"""Waiting on conditions in real servers: poll until true or fail after a bound."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

T = TypeVar("T")


@overload
async def eventually(probe: Callable[[], Awaitable[T | None]], *, timeout: float = 10,
                     interval: float = 0.05, what: str = "condition") -> T: ...


@overload
async def eventually(probe: Callable[[], T | None], *, timeout: float = 10,
                     interval: float = 0.05, what: str = "condition") -> T: ...


async def eventually(probe: Callable[[], Any], *, timeout: float = 10,
                     interval: float = 0.05, what: str = "condition") -> Any:
    """Return the first truthy result of ``probe`` (a plain or an async callable); raise
    AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        result = probe()
        last = await result if inspect.isawaitable(result) else result
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value: {last!r}")
