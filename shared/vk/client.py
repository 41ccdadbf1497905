"""The VK API client every service uses.

Each call is one form-encoded ``POST {api_url}/{method}``, made once the token's
rate limiter admits it (:mod:`shared.vk.rate_limit`), bounded by a per-request
timeout, and turned into a result or a typed :class:`~shared.vk.errors.VkError`.
Transient failures are retried under the project's backoff policy
(:mod:`shared.retry`); calls that must not be repeated blindly (``wall.post``)
retry only failures that prove nothing happened.

Tokens are passed per call and never stored, logged, or left in an exception.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Self

import aiohttp
import structlog

from shared.clock import Sleep
from shared.retry import DEFAULT_BACKOFF, AttemptBudget, BackoffPolicy, async_retrying
from shared.settings import Settings
from shared.vk import metrics
from shared.vk.errors import (
    VkError,
    VkHttpError,
    VkMalformedResponse,
    VkNetworkError,
    VkUnknownOutcome,
    is_transient,
    outcome_unknown,
)
from shared.vk.execute import VkCall, batches, execute_code, match_results
from shared.vk.models import CallbackServer, WallFilter, WallPage, WallPost, wall_posts
from shared.vk.rate_limit import PROCESS_RATE_LIMITERS, RateLimiterRegistry, TokenRateLimits
from shared.vk.tokens import TokenKind, redact_token
from shared.vk.wire import decode_answer, describe_failure, form_value, int_field, outcome_label


def _log() -> structlog.typing.FilteringBoundLogger:
    # Looked up per event, not cached at import: a logger cached on first use under
    # configure_logging() would bypass structlog.testing.capture_logs in tests.
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(__name__)
    return logger


DEFAULT_API_URL = "https://api.vk.com/method"
DEFAULT_API_VERSION = "5.199"
WALL_GET_MAX_COUNT = 100
WALL_GET_BY_ID_MAX_POSTS = 100
_EVENT_NAME = re.compile(r"^[a-z_]+$")


class VkClient:
    """Async VK API client; use as ``async with VkClient.from_settings(settings) as vk``.

    A session passed in stays the caller's to close; one the client creates (on
    first use, inside the running loop) is closed by :meth:`close`. Rate limiters
    are shared process-wide by default, so several clients using one token still
    respect one limit.
    """

    def __init__(
        self,
        api_url: str = DEFAULT_API_URL,
        api_version: str = DEFAULT_API_VERSION,
        *,
        timeout_seconds: float = 10.0,
        user_rps: float = 3.0,
        community_rps: float = 20.0,
        max_attempts: int = 5,
        session: aiohttp.ClientSession | None = None,
        backoff: BackoffPolicy = DEFAULT_BACKOFF,
        rate_limiters: RateLimiterRegistry | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if timeout_seconds <= 0 or max_attempts < 1:
            raise ValueError("timeout_seconds must be > 0 and max_attempts >= 1")
        self.api_url = api_url.rstrip("/")
        self.api_version = api_version
        self.timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self.limits = TokenRateLimits.per_second(user_rps, community_rps)
        self.max_attempts = max_attempts
        self.backoff = backoff
        self._sleep = sleep  # the pauses between attempts; tests pass a recording one
        self._rate_limiters = (PROCESS_RATE_LIMITERS if rate_limiters is None
                               else rate_limiters)
        self._session = session
        self._owns_session = session is None
        self._closed = False

    @classmethod
    def from_settings(cls, settings: Settings,
                      session: aiohttp.ClientSession | None = None) -> VkClient:
        return cls(
            str(settings.vk_api_url), settings.vk_api_version,
            timeout_seconds=settings.vk_timeout_seconds, user_rps=settings.vk_user_rps,
            community_rps=settings.vk_group_rps, max_attempts=settings.vk_max_attempts,
            session=session,
        )

    def __repr__(self) -> str:
        return f"VkClient(api_url={self.api_url!r}, api_version={self.api_version!r})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()

    @property
    def session(self) -> aiohttp.ClientSession | None:
        """The HTTP session in use; ``None`` until a client-owned one is first needed."""
        return self._session

    async def close(self) -> None:
        """Close the session if this client created it; safe to call twice."""
        self._closed = True
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    # --- transport --------------------------------------------------------------------

    async def call(self, method: str, token: str, params: Mapping[str, Any] | None = None, *,
                   kind: TokenKind = TokenKind.USER, retry_unknown_outcome: bool = True,
                   budget: AttemptBudget | None = None) -> Any:
        """``response`` of VK method ``method``; raises a :class:`VkError` subclass.

        With ``retry_unknown_outcome=False`` only failures proving the call did not
        take effect (errors 6 and 9, refused connections) are retried. With a
        ``budget`` every attempt spends one of it, and no more attempts are made than
        it has left (nor than ``max_attempts``).
        """
        body = await self._call_with_retries(method, token, params or {}, kind,
                                             retry_unknown_outcome, budget)
        return body["response"]

    async def _call_with_retries(self, method: str, token: str, params: Mapping[str, Any],
                                 kind: TokenKind, retry_unknown_outcome: bool,
                                 budget: AttemptBudget | None = None) -> dict[str, Any]:
        max_attempts = self.max_attempts
        if budget is not None:
            if budget.remaining == 0:
                raise ValueError(f"no attempt left in the budget for {method}")
            max_attempts = min(max_attempts, budget.remaining)
        form = {key: form_value(value) for key, value in params.items() if value is not None}
        form.update(v=self.api_version, access_token=token)

        def retry_if(exc: BaseException) -> bool:
            return is_transient(exc) and (retry_unknown_outcome or not outcome_unknown(exc))

        def on_retry(exc: BaseException, attempt: int, delay: float) -> None:
            _log().warning("vk_call_retry", method=method, code=getattr(exc, "code", None),
                           error=type(exc).__name__, attempt=attempt,
                           retry_in_seconds=round(delay, 3))

        retrying = async_retrying(max_attempts=max_attempts, retry_if=retry_if,
                                  policy=self.backoff, on_retry=on_retry, sleep=self._sleep)
        async for attempt in retrying:
            with attempt:
                if budget is not None:
                    budget.spend()
                body = await self._send(method, token, form, kind)
        return body

    async def _send(self, method: str, token: str, form: Mapping[str, str],
                    kind: TokenKind) -> dict[str, Any]:
        """One attempt: wait for the rate limiter, POST, and decode the answer."""
        session = self._open_session()
        limiter = self._rate_limiters.limiter(token, self.limits.for_kind(kind))
        admitted = await limiter.acquire()
        started = time.monotonic()
        try:
            async with session.post(f"{self.api_url}/{method}", data=form,
                                    timeout=self.timeout) as response:
                status, reason, raw = response.status, response.reason or "", await response.read()
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            # No connection was made, so nothing was sent.
            metrics.CALLS.labels(method=method, outcome="network").inc()
            raise VkNetworkError(redact_token(describe_failure(exc), token), method) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            # Anything else may have happened after the request was sent, including the
            # overall timeout (it cannot tell connecting from waiting): VK may have acted.
            metrics.CALLS.labels(method=method, outcome="unknown_outcome").inc()
            raise VkUnknownOutcome(redact_token(describe_failure(exc), token), method) from exc
        finally:
            limiter.finished(admitted)
        elapsed = time.monotonic() - started
        metrics.CALL_SECONDS.labels(method=method).observe(elapsed)
        _log().debug("vk_call", method=method, status=status, seconds=round(elapsed, 3))
        try:
            decoded = decode_answer(method, token, status, reason, raw)
        except VkHttpError as exc:
            metrics.CALLS.labels(method=method, outcome=f"http_{exc.status}").inc()
            raise
        except VkError as exc:
            metrics.CALLS.labels(method=method, outcome=outcome_label(exc)).inc()
            raise
        metrics.CALLS.labels(method=method, outcome="ok").inc()
        return decoded

    def _open_session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise RuntimeError("the VkClient is closed")
        if self._session is None:
            # Created here, inside the running loop, as aiohttp requires. No pool limit:
            # the rate limiters pace requests, and a queue in the pool would bunch them.
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        return self._session

    # --- wall -------------------------------------------------------------------------

    async def wall_get(self, token: str, owner_id: int, filter: WallFilter = WallFilter.ALL,
                       offset: int = 0, count: int = WALL_GET_MAX_COUNT, *,
                       kind: TokenKind = TokenKind.USER) -> WallPage:
        """One page of ``owner_id``'s wall (negative for a community), newest first."""
        _check_page(offset, count)
        response = await self.call("wall.get", token, {
            "owner_id": owner_id, "filter": filter, "offset": offset, "count": count,
        }, kind=kind)
        return WallPage.model_validate(response)

    async def wall_get_all(self, token: str, owner_id: int, filter: WallFilter = WallFilter.ALL,
                           limit: int | None = None, *,
                           kind: TokenKind = TokenKind.USER) -> list[WallPost]:
        """Every post (or the newest ``limit``), paging by offset.

        A post published meanwhile shifts older ones down a page; such repeats are
        dropped. A post deleted meanwhile can make one be missed; VK offers no cursor.
        """
        if limit is not None and limit < 0:
            raise ValueError(f"limit must be >= 0, got {limit}")
        posts: list[WallPost] = []
        seen: set[tuple[int, int]] = set()
        offset = 0
        while limit is None or len(posts) < limit:
            wanted = WALL_GET_MAX_COUNT if limit is None else min(WALL_GET_MAX_COUNT,
                                                                 limit - len(posts))
            page = await self.wall_get(token, owner_id, filter, offset, wanted, kind=kind)
            for post in page.items:
                if (post.owner_id, post.id) not in seen:
                    seen.add((post.owner_id, post.id))
                    posts.append(post)
            offset += len(page.items)
            if not page.items or offset >= page.count:
                break
        return posts if limit is None else posts[:limit]

    async def wall_get_by_id(self, token: str, posts: Sequence[tuple[int, int]], *,
                             kind: TokenKind = TokenKind.USER) -> list[WallPost]:
        """The posts named as ``(owner_id, post_id)``; missing or hidden ones are absent."""
        found: list[WallPost] = []
        for start in range(0, len(posts), WALL_GET_BY_ID_MAX_POSTS):
            chunk = posts[start:start + WALL_GET_BY_ID_MAX_POSTS]
            response = await self.call("wall.getById", token, {
                "posts": [f"{owner_id}_{post_id}" for owner_id, post_id in chunk],
            }, kind=kind)
            # API 5.199 wraps the posts in {"items": [...]}; older versions send a list.
            items = response.get("items", []) if isinstance(response, dict) else response
            found.extend(wall_posts(items))
        return found

    async def wall_post(self, token: str, group_id: int, message: str,
                        attachments: Sequence[str] = (), publish_date: datetime | None = None,
                        *, guid: str | None = None, budget: AttemptBudget | None = None,
                        kind: TokenKind = TokenKind.USER) -> int:
        """Publish (or schedule, with ``publish_date``) a post as the community; its id.

        Never repeated blindly: a failure that leaves the outcome unknown (timeout,
        5xx, VK error 10) is raised with ``outcome_unknown`` set, and the caller must
        look at the wall before trying again — and try again with the same ``guid``,
        VK's key against posting the same post twice (it answers the first post's id).
        """
        _check_group_id(group_id)
        if publish_date is not None and publish_date.tzinfo is None:
            raise ValueError("publish_date must be timezone-aware")
        response = await self.call("wall.post", token, {
            "owner_id": -group_id, "from_group": True, "message": message,
            "attachments": list(attachments) or None, "publish_date": publish_date,
            "guid": guid,
        }, kind=kind, retry_unknown_outcome=False, budget=budget)
        return int_field(response, "post_id", "wall.post")

    async def wall_delete(self, token: str, group_id: int, post_id: int, *,
                          kind: TokenKind = TokenKind.USER) -> None:
        _check_group_id(group_id)
        await self.call("wall.delete", token, {"owner_id": -group_id, "post_id": post_id},
                        kind=kind)

    async def wall_get_many(self, token: str, owner_ids: Sequence[int],
                            filter: WallFilter = WallFilter.ALL, count: int = WALL_GET_MAX_COUNT,
                            *, kind: TokenKind = TokenKind.USER) -> dict[int, WallPage | VkError]:
        """The first page of each wall, 25 walls per request; a failed wall maps to its error."""
        _check_page(0, count)
        unique = list(dict.fromkeys(owner_ids))
        results = await self.execute(token, [
            VkCall("wall.get", {"owner_id": owner_id, "filter": filter, "count": count})
            for owner_id in unique
        ], kind=kind)
        return {
            owner_id: result if isinstance(result, VkError) else WallPage.model_validate(result)
            for owner_id, result in zip(unique, results, strict=True)
        }

    # --- Callback API servers -------------------------------------------------------

    async def groups_get_callback_confirmation_code(self, token: str, group_id: int, *,
                                                    kind: TokenKind = TokenKind.USER) -> str:
        _check_group_id(group_id)
        response = await self.call("groups.getCallbackConfirmationCode", token,
                                   {"group_id": group_id}, kind=kind)
        code = response.get("code") if isinstance(response, dict) else None
        if not isinstance(code, str):
            raise VkMalformedResponse("no confirmation code in the answer",
                                      "groups.getCallbackConfirmationCode")
        return code

    async def groups_get_callback_servers(self, token: str, group_id: int, *,
                                          kind: TokenKind = TokenKind.USER
                                          ) -> list[CallbackServer]:
        _check_group_id(group_id)
        response = await self.call("groups.getCallbackServers", token, {"group_id": group_id},
                                   kind=kind)
        items = response.get("items", []) if isinstance(response, dict) else []
        return [CallbackServer.model_validate(item) for item in items]

    async def groups_add_callback_server(self, token: str, group_id: int, url: str, title: str,
                                         secret_key: str, *,
                                         kind: TokenKind = TokenKind.USER) -> int:
        """Add a server; its id. Not repeated blindly: a repeat would add a duplicate."""
        _check_group_id(group_id)
        response = await self.call("groups.addCallbackServer", token, {
            "group_id": group_id, "url": url, "title": title, "secret_key": secret_key,
        }, kind=kind, retry_unknown_outcome=False)
        return int_field(response, "server_id", "groups.addCallbackServer")

    async def groups_edit_callback_server(self, token: str, group_id: int, server_id: int,
                                          url: str, title: str, secret_key: str, *,
                                          kind: TokenKind = TokenKind.USER) -> None:
        _check_group_id(group_id)
        await self.call("groups.editCallbackServer", token, {
            "group_id": group_id, "server_id": server_id, "url": url, "title": title,
            "secret_key": secret_key,
        }, kind=kind)

    async def groups_set_callback_settings(self, token: str, group_id: int, server_id: int,
                                           api_version: str, events: Mapping[str, bool], *,
                                           kind: TokenKind = TokenKind.USER) -> None:
        """Choose the API version and the events (``{"wall_post_new": True}``) sent."""
        _check_group_id(group_id)
        for event in events:
            if not _EVENT_NAME.fullmatch(event) or event in {"group_id", "server_id",
                                                             "api_version"}:
                raise ValueError(f"not a Callback API event name: {event!r}")
        await self.call("groups.setCallbackSettings", token, {
            "group_id": group_id, "server_id": server_id, "api_version": api_version,
            **{event: bool(enabled) for event, enabled in events.items()},
        }, kind=kind)

    # --- execute ------------------------------------------------------------------------

    async def execute(self, token: str, calls: Sequence[VkCall], *,
                      kind: TokenKind = TokenKind.USER) -> list[Any | VkError]:
        """Run ``calls`` through ``execute``, 25 per request; per call a result or its error.

        A failure of a whole request (bad token, network) is raised, not spread out.
        """
        results: list[Any | VkError] = []
        for batch in batches(calls):
            body = await self._call_with_retries("execute", token, {"code": execute_code(batch)},
                                                 kind, retry_unknown_outcome=True)
            try:
                results.extend(match_results(batch, body["response"],
                                             body.get("execute_errors"), token))
            except ValueError as exc:
                raise VkMalformedResponse(str(exc), "execute") from None
        return results


def _check_page(offset: int, count: int) -> None:
    if not 1 <= count <= WALL_GET_MAX_COUNT:
        raise ValueError(f"count must be within 1..{WALL_GET_MAX_COUNT}, got {count}")
    if offset < 0:
        raise ValueError(f"offset must be >= 0, got {offset}")


def _check_group_id(group_id: int) -> None:
    # Community ids are positive; the owner id on walls is its negation.
    if group_id <= 0:
        raise ValueError(f"group_id must be positive, got {group_id}")
