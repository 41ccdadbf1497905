"""Concurrent ``wall.get`` first pages of one token, read together through ``execute``.

Reconciliation refreshes a project's three caches at the same moment, and one admin's
token often serves many communities. Each read waits ``linger`` seconds for the others
of its token, and then all of them go to VK as one ``execute`` (25 calls per request,
one request against the token's rate limit) instead of one request each. A caller waits
for its own result: its page, or its own error (``execute`` reports errors per call);
an error of the whole request (a dead token, the network) reaches every caller of it.
One request per token is in flight at a time, and the reads arriving meanwhile fill
the next one, so under load every request carries 25 reads. Meant for reads nobody
waits for: the linger is added to each.
"""

from __future__ import annotations

import asyncio

from shared.vk.client import VkClient
from shared.vk.errors import VkError, VkMalformedResponse
from shared.vk.execute import MAX_CALLS_PER_EXECUTE, VkCall
from shared.vk.models import WallFilter, WallPage
from shared.vk.tokens import TokenKind

_Waiting = tuple[VkCall, "asyncio.Future[WallPage]"]


class WallPageBatcher:
    def __init__(self, vk: VkClient, linger: float = 0.05) -> None:
        self._vk = vk
        self._linger = linger
        self._waiting: dict[tuple[str, TokenKind], list[_Waiting]] = {}
        self._senders: dict[tuple[str, TokenKind], asyncio.Task[None]] = {}
        self.requests = 0  # execute requests sent, for tests and curiosity

    async def first_page(self, token: str, owner_id: int, filter: WallFilter, count: int, *,
                         kind: TokenKind = TokenKind.USER) -> WallPage:
        """The first ``count`` posts (at most 100) of ``owner_id``'s wall under ``filter``."""
        waiter: asyncio.Future[WallPage] = asyncio.get_running_loop().create_future()
        key = (token, kind)
        self._waiting.setdefault(key, []).append(
            (VkCall("wall.get", {"owner_id": owner_id, "filter": filter, "count": count}), waiter))
        if key not in self._senders:
            self._senders[key] = asyncio.create_task(self._send_waiting(key))
        return await waiter

    async def _send_waiting(self, key: tuple[str, TokenKind]) -> None:
        """One request at a time per token, each with up to 25 of the reads waiting then:
        while a request waits for the rate limiter or VK, the next one fills up."""
        batch: list[_Waiting] = []
        try:
            await asyncio.sleep(self._linger)
            while waiting := self._waiting.get(key):
                batch, self._waiting[key] = (waiting[:MAX_CALLS_PER_EXECUTE],
                                             waiting[MAX_CALLS_PER_EXECUTE:])
                await self._send(key, batch)
                batch = []
        finally:
            # Reached without an await after finding nothing waiting (or cancelled).
            del self._senders[key]
            for _, waiter in batch + self._waiting.pop(key, []):
                waiter.cancel()

    async def _send(self, key: tuple[str, TokenKind], batch: list[_Waiting]) -> None:
        token, kind = key
        self.requests += 1
        try:
            results = await self._vk.execute(token, [call for call, _ in batch], kind=kind)
        except Exception as exc:  # the whole request failed: each of its readers learns why
            for _, waiter in batch:
                if not waiter.done():
                    waiter.set_exception(exc)
            return
        for (_, waiter), result in zip(batch, results, strict=True):
            if waiter.done():
                continue
            if isinstance(result, VkError):
                waiter.set_exception(result)
                continue
            try:
                waiter.set_result(WallPage.model_validate(result))
            except ValueError as exc:
                waiter.set_exception(VkMalformedResponse(str(exc), "wall.get"))
