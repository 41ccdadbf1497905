from __future__ import annotations

import pytest

from services.callback_gateway.retry_after import FIRST_RETRY_SECONDS, retry_after_header


class TestRetryAfterHeader:
    @pytest.mark.parametrize("retry_counter", [None, 0])
    def test_a_first_try_is_asked_to_come_back_soon(self, retry_counter: int | None) -> None:
        """A first try (no X-Retry-Counter, or 0) gets Retry-After with the short delay."""
        assert retry_after_header(retry_counter) == {"Retry-After": str(FIRST_RETRY_SECONDS)}

    @pytest.mark.parametrize("retry_counter", [1, 2, 5])
    def test_later_tries_keep_vks_own_schedule(self, retry_counter: int) -> None:
        """A retry gets no hint, so VK's schedule (up to 1 h 43 min in all) applies."""
        assert retry_after_header(retry_counter) == {}
