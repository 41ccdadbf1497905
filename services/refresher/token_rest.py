"""A token VK rejected for good rests: pure decisions about when to call VK with it again.

After a permanent token error on a read (5 invalid or revoked token, 15 access denied,
27 community token invalid, 214 access to the wall denied) every further call with that
token would fail the same way, so the project's refreshes stop calling VK: the project
gets ``vk_token_rest`` = ``{fingerprint, code, error, since, probe_at}`` (the token's
SHA-256 fingerprint, never the token), and while it applies at most one refresh per
``VK_TOKEN_PROBE_SECONDS`` — the one that claims ``probe_at`` — calls VK as a *probe*;
the others record the same error without calling. The rest ends at once when the
project's token in MongoDB is another one (its fingerprint differs), or when a probe
succeeds (access granted again).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.vk import VkError

# VK's codes that say the token itself (or its access to the wall) is refused.
TOKEN_ERROR_CODES = frozenset({5, 15, 27, 214})


def rests_token(exc: VkError) -> bool:
    """Whether ``exc`` (from a read) means the token should rest."""
    return not exc.transient and exc.code in TOKEN_ERROR_CODES


@dataclass(frozen=True, slots=True)
class TokenRest:
    fingerprint: str
    code: int | None
    error: str
    probe_at: datetime | None

    @classmethod
    def from_document(cls, value: Any) -> TokenRest | None:
        """Read tolerantly: anything without a fingerprint is no rest at all."""
        if not isinstance(value, Mapping) or not isinstance(value.get("fingerprint"), str):
            return None
        code = value.get("code")
        probe_at = value.get("probe_at")
        return cls(fingerprint=value["fingerprint"],
                   code=int(code) if isinstance(code, int | float) and not isinstance(
                       code, bool) else None,
                   error=str(value.get("error") or "the VK token was refused"),
                   probe_at=probe_at if isinstance(probe_at, datetime) else None)

    def applies_to(self, fingerprint: str) -> bool:
        """The rest holds for the project's current token (a changed token ends it)."""
        return self.fingerprint == fingerprint
