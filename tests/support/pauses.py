"""A stand-in for ``asyncio.sleep`` that records each pause and takes none."""

from __future__ import annotations


class RecordedPauses:
    """Passed as ``sleep`` to what retries (the VK client, the sandbox's callback sender):
    a test asserts the exact retry schedule instead of timing it."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)
