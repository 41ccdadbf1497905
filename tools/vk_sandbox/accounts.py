"""Users, and who a request's access token says is calling."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class TokenKind(StrEnum):
    USER = "user"
    COMMUNITY = "community"
    UNKNOWN = "unknown"  # missing or not issued by the sandbox


@dataclass
class User:
    user_id: int
    token: str
    admin_of: set[int] = field(default_factory=set)


@dataclass(frozen=True)
class Caller:
    """The owner of a valid token: a user, or a community (``group_id``) for its own token."""

    kind: TokenKind
    token: str
    user_id: int | None = None
    group_id: int | None = None
