"""Async client of the sandbox's control API (``/_sandbox/``), for tests and demos.

::

    async with SandboxControl("http://127.0.0.1:8090") as sandbox:
        community = await sandbox.create_community(name="Test")
        admin = await sandbox.create_user(admin_of=[community.group_id])
        await sandbox.create_post(community.group_id, "hello")
        wall = await sandbox.wall(community.group_id)

Every method raises :class:`SandboxControlError` when the sandbox answers 4xx/5xx.
Results are plain JSON (VK-shaped dicts) except the few small typed records below.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, Self

import aiohttp


class SandboxControlError(RuntimeError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"sandbox control API answered {status}: {message}")
        self.status = status
        self.message = message


@dataclass(frozen=True)
class CreatedCommunity:
    group_id: int
    community_token: str
    name: str
    confirmation_code: str


@dataclass(frozen=True)
class CreatedUser:
    user_id: int
    token: str


class SandboxControl:
    """One sandbox's control API. Pass a session to share one; otherwise it owns its own
    (closed by :meth:`close` or on leaving ``async with``)."""

    def __init__(self, base_url: str, session: aiohttp.ClientSession | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._session = session
        self._owns_session = session is None

    @property
    def api_url(self) -> str:
        """The VK API base to configure clients with (like ``https://api.vk.com/method``)."""
        return f"{self.base_url}/method"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def _request(
        self, method: str, path: str, json: Any = None, params: dict[str, str] | None = None
    ) -> Any:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        async with self._session.request(
            method, f"{self.base_url}/_sandbox/{path}", json=json, params=params
        ) as response:
            payload = await response.json(content_type=None)
            if response.status >= 400:
                message = payload.get("error") if isinstance(payload, dict) else payload
                raise SandboxControlError(response.status, str(message))
            return payload

    async def health(self) -> bool:
        """Whether the sandbox answers."""
        return bool((await self._request("GET", "health"))["ok"])

    async def create_community(
        self, group_id: int | None = None, name: str | None = None
    ) -> CreatedCommunity:
        """A new community (next free id unless given) with its own community token."""
        body = {key: value for key, value in {"group_id": group_id, "name": name}.items()
                if value is not None}
        data = await self._request("POST", "communities", body)
        return CreatedCommunity(data["group_id"], data["community_token"], data["name"],
                                data["confirmation_code"])

    async def create_user(
        self, user_id: int | None = None, admin_of: list[int] | None = None
    ) -> CreatedUser:
        """A new user with a user token, admin of the given communities."""
        body: dict[str, Any] = {"admin_of": admin_of or []}
        if user_id is not None:
            body["user_id"] = user_id
        data = await self._request("POST", "users", body)
        return CreatedUser(data["user_id"], data["token"])

    async def create_post(
        self,
        group_id: int,
        text: str,
        *,
        attachments: list[str] | None = None,
        publish_date: int | None = None,
        post_type: Literal["post", "suggest"] = "post",
        repost: bool = False,
        from_id: int | None = None,
        repost_of: int | None = None,
    ) -> dict[str, Any]:
        """Make a post as if someone did it on VK; the matching callback fires.

        ``publish_date`` in the future makes a postponed post (``wall_schedule_post_new``);
        ``post_type="suggest"`` a suggested one (``wall_post_new``, post_type suggest);
        ``repost=True`` has a reader (``from_id``) repost the latest published post, or
        ``repost_of`` (``wall_repost``). Returns the VK-shaped post.
        """
        body: dict[str, Any] = {"text": text, "post_type": post_type, "repost": repost}
        optional = {"attachments": attachments, "publish_date": publish_date,
                    "from_id": from_id, "repost_of": repost_of}
        body.update({key: value for key, value in optional.items() if value is not None})
        result: dict[str, Any] = await self._request(
            "POST", f"communities/{group_id}/posts", body)
        return result

    async def delete_post(self, group_id: int, post_id: int) -> dict[str, Any]:
        """Delete a post (a postponed one fires ``wall_schedule_post_delete``); returns it."""
        result: dict[str, Any] = await self._request(
            "DELETE", f"communities/{group_id}/posts/{post_id}")
        return result

    async def wall(self, group_id: int) -> dict[str, list[dict[str, Any]]]:
        """``{"published", "postponed", "suggests"}``: every post, hidden ones included."""
        result: dict[str, list[dict[str, Any]]] = await self._request(
            "GET", f"communities/{group_id}/wall")
        return result

    async def calls(self, method: str | None = None) -> list[dict[str, Any]]:
        """API calls received (optionally of one method), oldest first.

        Each: ``method, token_kind, params, at, error_code, http_status, via_execute``.
        """
        params = {"method": method} if method else None
        result: list[dict[str, Any]] = (await self._request("GET", "calls", params=params))[
            "calls"]
        return result

    async def clear_calls(self) -> None:
        await self._request("DELETE", "calls")

    async def inject_fault(self, kind: str, **spec: Any) -> dict[str, Any]:
        """Inject a fault, e.g. ``inject_fault("error", method="wall.get", code=6, count=3)``.

        Kinds: ``error`` (method, code, count), ``latency`` (method or None, seconds,
        count or None),
        ``http_status`` (method, status, count), ``malformed`` (method, count),
        ``hide_posts`` (group_id, seconds or None), ``duplicate_callbacks`` (count).
        """
        result: dict[str, Any] = (await self._request("POST", "faults", {"kind": kind, **spec}))[
            "fault"]
        return result

    async def faults(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = (await self._request("GET", "faults"))["faults"]
        return result

    async def clear_faults(self) -> None:
        await self._request("DELETE", "faults")

    async def deliveries(
        self, event_id: str | None = None, event_type: str | None = None,
        group_id: int | None = None,
    ) -> list[dict[str, Any]]:
        """Callback deliveries, one per (event, server): attempts, delivered, gave_up."""
        filters = {"event_id": event_id, "type": event_type,
                   "group_id": str(group_id) if group_id is not None else None}
        params = {key: value for key, value in filters.items() if value is not None}
        result: list[dict[str, Any]] = (await self._request(
            "GET", "deliveries", params=params))["deliveries"]
        return result

    async def clear_deliveries(self) -> None:
        await self._request("DELETE", "deliveries")

    async def send_callback(self, group_id: int, event_type: str, event_object: dict[str, Any]
                            ) -> str:
        """Send a raw event through the normal delivery machinery; returns its event_id."""
        body = {"group_id": group_id, "type": event_type, "object": event_object}
        return str((await self._request("POST", "callbacks", body))["event_id"])

    async def send_callbacks(self, events: list[tuple[int, str, dict[str, Any]]]) -> list[str]:
        """Send many raw events ``(group_id, type, object)`` at once; returns their ids."""
        body = {"events": [{"group_id": group_id, "type": event_type, "object": event_object}
                           for group_id, event_type, event_object in events]}
        return [str(event_id) for event_id in
                (await self._request("POST", "callbacks", body))["event_ids"]]

    async def set_config(
        self, *, retry_scale: float | None = None, user_requests_per_second: int | None = None,
        community_requests_per_second: int | None = None,
        delivery_timeout_seconds: float | None = None,
    ) -> dict[str, Any]:
        """Change settings live; returns them all."""
        body = {key: value for key, value in {
            "retry_scale": retry_scale,
            "user_requests_per_second": user_requests_per_second,
            "community_requests_per_second": community_requests_per_second,
            "delivery_timeout_seconds": delivery_timeout_seconds,
        }.items() if value is not None}
        result: dict[str, Any] = await self._request("POST", "config", body)
        return result
