"""What a VK method implementation gets, and the access checks they share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .accounts import Caller, TokenKind
from .community import Community
from .errors import (
    ACCESS_DENIED,
    DETAIL_GROUP_AUTH,
    GROUP_AUTH_FAILED,
    VkApiError,
    invalid_param,
)
from .params import Params
from .sandbox import Sandbox


@dataclass
class MethodCall:
    sandbox: Sandbox
    caller: Caller
    params: Params

    def require_user_token(self) -> None:
        """Methods VK refuses to community tokens (error 27)."""
        if self.caller.kind is not TokenKind.USER:
            raise VkApiError(GROUP_AUTH_FAILED, DETAIL_GROUP_AUTH)

    def community(self, group_id: int, param: str = "group_id") -> Community:
        community = self.sandbox.state.communities.get(group_id)
        if community is None:
            raise invalid_param(param, "is invalid")
        return community

    def community_of_owner(self, param: str = "owner_id") -> Community:
        """The community whose wall ``owner_id`` (a negative group id) names."""
        owner_id = self.params.required_integer(param)
        if owner_id >= 0:
            raise invalid_param(param, "is not a community wall (the sandbox has no user walls)")
        return self.community(-owner_id, param)

    def is_admin(self, community: Community) -> bool:
        """An admin's user token, or the community's own token."""
        if self.caller.kind is TokenKind.COMMUNITY:
            return self.caller.group_id == community.group_id
        return self.caller.user_id is not None and self.caller.user_id in community.admin_ids

    def require_admin(self, community: Community) -> None:
        if not self.is_admin(community):
            raise VkApiError(ACCESS_DENIED, "no access to call this method")


MethodHandler = Callable[[MethodCall], Any]
