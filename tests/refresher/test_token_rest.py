"""Which VK errors make a token rest, and reading a rest tolerantly (pure)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from services.refresher.token_rest import TokenRest, rests_token
from shared.vk import VkError, error_from_payload

AT = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


class TestRestsToken:
    @pytest.mark.parametrize(("code", "rests"), [
        (5, True), (15, True), (27, True), (214, True),  # the token or its access refused
        (6, False), (9, False), (10, False),  # transient: retried, not rested
        (7, False), (100, False), (203, False),  # permanent, but not about the token
    ])
    def test_codes(self, code: int, rests: bool) -> None:
        """Only a refused token (or refused access to the wall) rests."""
        error: VkError = error_from_payload({"error_code": code, "error_msg": "x"}, "wall.get")
        assert rests_token(error) is rests


class TestTokenRest:
    @pytest.mark.parametrize(("value", "expected"), [
        (None, None),
        ("resting", None),
        ({"code": 5}, None),  # no fingerprint: no rest
        ({"fingerprint": "f", "code": 5.0, "error": "VK error 5", "probe_at": AT},
         TokenRest("f", 5, "VK error 5", AT)),  # a double, as other writers store numbers
        ({"fingerprint": "f", "code": True, "probe_at": "soon"},
         TokenRest("f", None, "the VK token was refused", None)),
    ])
    def test_from_document(self, value: Any, expected: TokenRest | None) -> None:
        """Whatever is stored, a rest or none; never an exception."""
        assert TokenRest.from_document(value) == expected

    def test_a_changed_token_ends_the_rest(self) -> None:
        """The rest holds only for the token it was taken for."""
        rest = TokenRest("old", 5, "VK error 5", AT)
        assert rest.applies_to("old") and not rest.applies_to("new")
