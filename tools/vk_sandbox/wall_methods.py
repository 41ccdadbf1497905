"""``wall.*`` methods: get, getById, post, delete."""

from __future__ import annotations

import re
import time
from typing import Any

from .attachments import parse_attachments
from .community import Community
from .errors import ACCESS_DENIED, NOT_FOUND, VkApiError, invalid_param
from .method_call import MethodCall, MethodHandler
from .posts import Post, PostType

WALL_GET_FILTERS = frozenset({"owner", "others", "all", "postponed", "suggests"})
MAX_WALL_GET_COUNT = 100
_POST_REFERENCE = re.compile(r"^(-?\d+)_(\d+)$")


def _group_object(community: Community) -> dict[str, Any]:
    """The community as ``extended=1`` lists it in ``groups``."""
    photo = "https://sun9-1.userapi.com/sandbox/community"
    return {
        "id": community.group_id,
        "name": community.name,
        "screen_name": f"club{community.group_id}",
        "is_closed": 0,
        "type": "group",
        "photo_50": f"{photo}_50.png",
        "photo_100": f"{photo}_100.png",
        "photo_200": f"{photo}_200.png",
    }


def _visible(call: MethodCall, community: Community, post: Post, now: float) -> bool:
    """Whether the caller may see the post: postponed and suggested ones are for admins."""
    if not post.visible_at(now):
        return False
    return post.post_type is PostType.POST or call.is_admin(community)


def wall_get(call: MethodCall) -> dict[str, Any]:
    call.require_user_token()
    community = call.community_of_owner()
    offset = call.params.integer("offset", 0) or 0
    count = call.params.integer("count", 20)
    if count is None or not 0 <= count <= MAX_WALL_GET_COUNT:
        raise invalid_param("count", f"should be from 0 to {MAX_WALL_GET_COUNT}")
    if offset < 0:
        raise invalid_param("offset", "should be positive")
    wall_filter = call.params.text("filter", "all") or "all"
    if wall_filter not in WALL_GET_FILTERS:
        raise invalid_param("filter", f"should be one of {', '.join(sorted(WALL_GET_FILTERS))}")
    if wall_filter in ("postponed", "suggests") and not call.is_admin(community):
        raise VkApiError(ACCESS_DENIED, "only community admins see postponed and suggested posts")
    posts = community.wall.for_filter(wall_filter, time.time())
    response: dict[str, Any] = {
        "count": len(posts),
        "items": [post.to_vk() for post in posts[offset:offset + count]],
    }
    if call.params.flag("extended"):
        response["profiles"] = []
        response["groups"] = [_group_object(community)]
    return response


def wall_get_by_id(call: MethodCall) -> dict[str, Any]:
    call.require_user_token()
    now = time.time()
    items: list[dict[str, Any]] = []
    for reference in call.params.required_text("posts").split(","):
        match = _POST_REFERENCE.match(reference.strip())
        if match is None:
            raise invalid_param("posts", f"is invalid: {reference!r}")
        owner_id, post_id = int(match[1]), int(match[2])
        community = call.sandbox.state.communities.get(-owner_id)
        if community is None:
            continue  # VK leaves out posts it cannot find
        post = community.wall.get(post_id)
        if post is not None and _visible(call, community, post, now):
            items.append(post.to_vk())
    response: dict[str, Any] = {"items": items}
    if call.params.flag("extended"):
        response["profiles"] = []
        response["groups"] = [
            _group_object(community)
            for group_id in sorted({-item["owner_id"] for item in items})
            if (community := call.sandbox.state.communities.get(group_id))
        ]
    return response


def wall_post(call: MethodCall) -> dict[str, Any]:
    call.require_user_token()
    community = call.community_of_owner()
    call.require_admin(community)
    message = call.params.text("message", "") or ""
    attachments = parse_attachments(call.params.text("attachments"))
    if not message and not attachments:
        raise invalid_param("message", "is empty or invalid")
    publish_date = call.params.integer("publish_date")
    if publish_date is not None and publish_date < 0:
        raise invalid_param("publish_date", "is invalid")
    from_group = call.params.flag("from_group")
    guid = call.params.text("guid")
    now = time.time()
    if guid is not None and (known := community.post_of_guid(guid, now)) is not None:
        return {"post_id": known}  # the same guid on the same wall: the same post, no other
    post = call.sandbox.walls.create_post(
        community,
        text=message,
        attachments=attachments,
        publish_date=publish_date,
        from_id=None if from_group else call.caller.user_id,
        created_by=call.caller.user_id,
        hide_seconds=call.sandbox.faults.hide_seconds(community.group_id),
    )
    if guid is not None:
        community.remember_guid(guid, post.id, now)
    return {"post_id": post.id}


def wall_delete(call: MethodCall) -> int:
    call.require_user_token()
    community = call.community_of_owner()
    call.require_admin(community)
    post_id = call.params.required_integer("post_id")
    if community.wall.get(post_id) is None:
        raise VkApiError(NOT_FOUND, f"post {post_id} not found")
    call.sandbox.walls.delete_post(community, post_id)
    return 1


WALL_METHODS: dict[str, MethodHandler] = {
    "wall.get": wall_get,
    "wall.getById": wall_get_by_id,
    "wall.post": wall_post,
    "wall.delete": wall_delete,
}
