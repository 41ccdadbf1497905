"""``groups.*`` methods of the Callback API: servers, their settings, the confirmation code."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from .callback_servers import CALLBACK_EVENT_FLAGS, CallbackServer
from .community import Community
from .errors import CALLBACK_SERVERS_LIMIT, NOT_FOUND, VkApiError, invalid_param
from .method_call import MethodCall, MethodHandler

MAX_SERVERS_PER_COMMUNITY = 10
MAX_TITLE_LENGTH = 14
MAX_SECRET_KEY_LENGTH = 50


def _admin_community(call: MethodCall) -> Community:
    community = call.community(call.params.required_integer("group_id"))
    call.require_admin(community)
    return community


def _server(call: MethodCall, community: Community) -> CallbackServer:
    server_id = call.params.required_integer("server_id")
    server = community.callback_servers.get(server_id)
    if server is None:
        raise VkApiError(NOT_FOUND, f"server {server_id} not found")
    return server


def _url_title_secret(call: MethodCall) -> tuple[str, str, str]:
    url = call.params.required_text("url")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise invalid_param("url", "is invalid")
    title = call.params.required_text("title")
    if len(title) > MAX_TITLE_LENGTH:
        raise invalid_param("title", f"is longer than {MAX_TITLE_LENGTH} characters")
    secret_key = call.params.text("secret_key", "") or ""
    if len(secret_key) > MAX_SECRET_KEY_LENGTH:
        raise invalid_param("secret_key", f"is longer than {MAX_SECRET_KEY_LENGTH} characters")
    return url, title, secret_key


def get_confirmation_code(call: MethodCall) -> dict[str, Any]:
    return {"code": _admin_community(call).confirmation_code}


def add_server(call: MethodCall) -> dict[str, Any]:
    community = _admin_community(call)
    url, title, secret_key = _url_title_secret(call)
    if len(community.callback_servers) >= MAX_SERVERS_PER_COMMUNITY:
        raise VkApiError(CALLBACK_SERVERS_LIMIT)
    server = CallbackServer(
        id=community.next_server_id(),
        group_id=community.group_id,
        title=title,
        creator_id=call.caller.user_id or 0,
        url=url,
        secret_key=secret_key,
    )
    community.callback_servers[server.id] = server
    call.sandbox.dispatcher.confirm(server)
    return {"server_id": server.id}


def edit_server(call: MethodCall) -> int:
    community = _admin_community(call)
    server = _server(call, community)
    server.url, server.title, server.secret_key = _url_title_secret(call)
    call.sandbox.dispatcher.confirm(server)
    return 1


def delete_server(call: MethodCall) -> int:
    community = _admin_community(call)
    server = _server(call, community)
    del community.callback_servers[server.id]
    return 1


def get_servers(call: MethodCall) -> dict[str, Any]:
    community = _admin_community(call)
    wanted = call.params.integers("server_ids")
    servers = [
        server
        for server_id, server in sorted(community.callback_servers.items())
        if wanted is None or server_id in wanted
    ]
    return {"count": len(servers), "items": [server.to_vk() for server in servers]}


def set_settings(call: MethodCall) -> int:
    community = _admin_community(call)
    server = _server(call, community)
    if (api_version := call.params.text("api_version")) is not None:
        server.api_version = api_version
    for flag in CALLBACK_EVENT_FLAGS:
        if flag in call.params:
            server.events[flag] = int(call.params.flag(flag))
    return 1


def get_settings(call: MethodCall) -> dict[str, Any]:
    community = _admin_community(call)
    return _server(call, community).settings_to_vk()


CALLBACK_METHODS: dict[str, MethodHandler] = {
    "groups.getCallbackConfirmationCode": get_confirmation_code,
    "groups.addCallbackServer": add_server,
    "groups.editCallbackServer": edit_server,
    "groups.deleteCallbackServer": delete_server,
    "groups.getCallbackServers": get_servers,
    "groups.setCallbackSettings": set_settings,
    "groups.getCallbackSettings": get_settings,
}
