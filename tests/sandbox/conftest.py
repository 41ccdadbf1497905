"""Fixtures of the VK sandbox tests: a sandbox on a real localhost port, a callback receiver."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.callbacks import CallbackReceiver, running_receiver
from tests.support.sandbox import RunningSandbox, running_sandbox
from tools.vk_sandbox import SandboxConfig


@pytest.fixture
async def sandbox() -> AsyncIterator[RunningSandbox]:
    """A sandbox without effective rate limits (tests of other things make many calls)."""
    async with running_sandbox() as running:
        yield running


@pytest.fixture
async def vk_limited_sandbox() -> AsyncIterator[RunningSandbox]:
    """A sandbox with VK's real rate limits (the defaults)."""
    async with running_sandbox(SandboxConfig()) as running:
        yield running


@pytest.fixture
async def receiver() -> AsyncIterator[CallbackReceiver]:
    async with running_receiver() as running:
        yield running
        assert running.schema_errors == [], "callbacks that do not match VK's schema"
