"""VK access tokens: their kind, a fingerprint safe to keep, and redaction from text."""

from __future__ import annotations

import hashlib
from enum import StrEnum

from shared.logging import REDACTED, redact_text


class TokenKind(StrEnum):
    """Who a token acts for; VK rate-limits the two kinds differently."""

    USER = "user"
    COMMUNITY = "community"


def token_fingerprint(token: str) -> str:
    """A stable key for per-token state that does not keep the token itself in memory."""
    return hashlib.sha256(token.encode()).hexdigest()


def redact_token(text: str, token: str | None = None) -> str:
    """``text`` without ``token`` anywhere in it, nor any ``access_token=...`` pair."""
    if token:
        text = text.replace(token, REDACTED)
    return redact_text(text)
