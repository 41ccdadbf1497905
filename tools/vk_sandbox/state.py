"""Everything the sandbox knows: communities, users and the tokens that name them."""

from __future__ import annotations

import secrets
from collections.abc import Iterable

from .accounts import Caller, TokenKind, User
from .community import Community


class ConflictError(ValueError):
    """An id that is already taken."""


class NotFoundError(LookupError):
    """A community or user that does not exist."""


def new_token() -> str:
    # VK's current token format: "vk1.a." and an opaque tail.
    return f"vk1.a.{secrets.token_urlsafe(48)}"


class SandboxState:
    """In-memory directory of communities and users; tokens resolve to callers."""

    def __init__(self) -> None:
        self.communities: dict[int, Community] = {}
        self.users: dict[int, User] = {}
        self._callers: dict[str, Caller] = {}

    def create_community(
        self, group_id: int | None = None, name: str | None = None, token: str | None = None
    ) -> Community:
        if group_id is None:
            group_id = max(self.communities, default=0) + 1
        if group_id <= 0:
            raise ValueError("group_id must be positive")
        if group_id in self.communities:
            raise ConflictError(f"community {group_id} exists")
        token = token or new_token()
        self._claim_token(token)
        community = Community(
            group_id=group_id,
            name=name or f"Community {group_id}",
            token=token,
            confirmation_code=secrets.token_hex(4),
        )
        self.communities[group_id] = community
        self._callers[token] = Caller(TokenKind.COMMUNITY, token, group_id=group_id)
        return community

    def create_user(
        self, user_id: int | None = None, admin_of: Iterable[int] = (), token: str | None = None
    ) -> User:
        if user_id is None:
            user_id = max(self.users, default=100) + 1
        if user_id <= 0:
            raise ValueError("user_id must be positive")
        if user_id in self.users:
            raise ConflictError(f"user {user_id} exists")
        groups = set(admin_of)
        for group_id in groups:
            self.community(group_id)
        token = token or new_token()
        self._claim_token(token)
        user = User(user_id=user_id, token=token, admin_of=groups)
        for group_id in groups:
            self.communities[group_id].admin_ids.add(user_id)
        self.users[user_id] = user
        self._callers[token] = Caller(TokenKind.USER, token, user_id=user_id)
        return user

    def community(self, group_id: int) -> Community:
        try:
            return self.communities[group_id]
        except KeyError:
            raise NotFoundError(f"no community {group_id}") from None

    def caller(self, token: str | None) -> Caller | None:
        return self._callers.get(token) if token else None

    def token_kind(self, token: str | None) -> TokenKind:
        caller = self.caller(token)
        return caller.kind if caller else TokenKind.UNKNOWN

    def is_admin(self, user_id: int, group_id: int) -> bool:
        user = self.users.get(user_id)
        return user is not None and group_id in user.admin_of

    def _claim_token(self, token: str) -> None:
        if token in self._callers:
            raise ConflictError("token already issued")
