"""Typed VK failures: API error codes, HTTP and network failures.

Two questions every caller asks are answered by the class:

* :attr:`VkError.transient` — may the same call succeed if repeated later?
  (:class:`VkTransientError` vs :class:`VkPermanentError`; :func:`is_transient`.)
* :attr:`VkError.outcome_unknown` — may the call have taken effect anyway? A
  caller of a non-idempotent method (``wall.post``) must not repeat such a call
  blindly; it has to look first (:func:`outcome_unknown`).

Messages and echoed request parameters never carry the access token or other
secrets: they are stripped when the error is built.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar, TypeVar

from shared.logging import SECRET_KEYS
from shared.vk.tokens import redact_token

# Parameters VK may echo back in ``request_params`` that must not be kept.
_SECRET_PARAMS = SECRET_KEYS | {"secret_key"}


class VkError(Exception):
    """Any failed VK call. ``code`` is VK's ``error_code``; ``None`` if VK gave none."""

    transient: ClassVar[bool] = False
    outcome_unknown: ClassVar[bool] = False

    def __init__(
        self,
        code: int | None,
        message: str,
        method: str,
        *,
        request_params: Mapping[str, str] | None = None,
    ) -> None:
        self.code = code
        self.message = redact_token(message)
        self.method = method
        self.request_params: dict[str, str] = {
            key: redact_token(value) for key, value in (request_params or {}).items()
            if key.lower() not in _SECRET_PARAMS
        }
        super().__init__(self.message)

    def __str__(self) -> str:
        prefix = f"VK error {self.code}" if self.code is not None else "VK call failed"
        return f"{prefix} in {self.method}: {self.message}"

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(code={self.code!r}, message={self.message!r}, "
                f"method={self.method!r})")

    def __reduce__(self) -> tuple[Any, ...]:
        # Subclasses take different arguments; rebuild from the (already redacted) state.
        return _rebuild, (type(self), self.args, dict(self.__dict__))


def _rebuild(cls: type[VkError], args: tuple[Any, ...], state: dict[str, Any]) -> VkError:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


class VkTransientError(VkError):
    """Repeating the same call later may succeed."""

    transient = True


class VkPermanentError(VkError):
    """Repeating the same call will fail the same way; also any code not known here."""


# --- failures outside the VK API ------------------------------------------------------


class VkNetworkError(VkTransientError):
    """The request never reached VK (connection refused, DNS, connect timeout)."""

    def __init__(self, message: str, method: str) -> None:
        super().__init__(None, message, method)


class VkUnknownOutcome(VkNetworkError):
    """The request may have reached VK, and no answer came back (e.g. read timeout).

    The call may have taken effect: a ``wall.post`` may have been published.
    """

    outcome_unknown = True


class VkHttpError(VkTransientError):
    """VK (or a proxy in front of it) answered 5xx; the call may have taken effect."""

    outcome_unknown = True

    def __init__(self, status: int, message: str, method: str) -> None:
        self.status = status
        super().__init__(None, f"HTTP {status}: {message}", method)


class VkUnexpectedStatus(VkPermanentError):
    """VK answered an HTTP status other than 200 or 5xx: the request itself is wrong."""

    def __init__(self, status: int, message: str, method: str) -> None:
        self.status = status
        super().__init__(None, f"HTTP {status}: {message}", method)


class VkMalformedResponse(VkTransientError):
    """The body is not the JSON VK sends; the call may have taken effect."""

    outcome_unknown = True

    def __init__(self, message: str, method: str) -> None:
        super().__init__(None, message, method)


# --- VK API error codes ---------------------------------------------------------------

VkErrorT = TypeVar("VkErrorT", bound=type[VkError])
ERROR_CLASSES: dict[int, type[VkError]] = {}


def _registers(code: int) -> Callable[[VkErrorT], VkErrorT]:
    """Class decorator: VK ``error_code`` ``code`` is raised as this class."""

    def register(cls: VkErrorT) -> VkErrorT:
        if code in ERROR_CLASSES:
            raise ValueError(f"VK error code {code} registered twice")
        ERROR_CLASSES[code] = cls
        return cls

    return register


@_registers(6)
class VkTooManyRequests(VkTransientError):
    """Too many requests per second: VK rejected the call before doing anything."""


@_registers(9)
class VkFloodControl(VkTransientError):
    """Too many actions of the same kind: VK rejected the call before doing anything."""


@_registers(10)
class VkInternalError(VkTransientError):
    """VK failed internally; whether the call took effect is not known."""

    outcome_unknown = True


@_registers(5)
class VkAuthError(VkPermanentError):
    """User authorization failed: the token is invalid, expired or revoked."""


@_registers(7)
class VkPermissionDenied(VkPermanentError):
    """The token lacks the scope this method needs."""


@_registers(14)
class VkCaptchaNeeded(VkPermanentError):
    """VK wants a captcha solved; a service cannot, so it is permanent for us."""

    def __init__(self, code: int | None, message: str, method: str, *,
                 request_params: Mapping[str, str] | None = None,
                 captcha_sid: str | None = None, captcha_img: str | None = None) -> None:
        super().__init__(code, message, method, request_params=request_params)
        self.captcha_sid = captcha_sid
        self.captcha_img = captcha_img


@_registers(15)
class VkAccessDenied(VkPermanentError):
    """Access denied to the object (wall, post, group)."""


@_registers(18)
class VkUserDeleted(VkPermanentError):
    """The user's page was deleted or banned."""


@_registers(27)
class VkGroupAuthError(VkPermanentError):
    """Group authorization failed: the community token is invalid or revoked."""


@_registers(28)
class VkAppAuthError(VkPermanentError):
    """Application authorization failed."""


@_registers(29)
class VkRateLimitReached(VkPermanentError):
    """The method's daily quota is used up; retrying within seconds cannot help."""


@_registers(100)
class VkInvalidParameter(VkPermanentError):
    """A parameter is missing or invalid."""


@_registers(113)
class VkInvalidUserId(VkPermanentError):
    """Invalid user id."""


@_registers(203)
class VkGroupAccessDenied(VkPermanentError):
    """Access to the community denied."""


@_registers(210)
class VkWallPostAccessDenied(VkPermanentError):
    """Access to the wall post denied."""


@_registers(214)
class VkPostingDenied(VkPermanentError):
    """Posting to this wall is denied (or the publish date is not allowed)."""


@_registers(219)
class VkAdPostRecentlyAdded(VkPermanentError):
    """An advertisement post was published recently."""


@_registers(220)
class VkTooManyRecipients(VkPermanentError):
    """Too many recipients."""


@_registers(222)
class VkLinksForbidden(VkPermanentError):
    """Hyperlinks are forbidden in this post."""


@_registers(224)
class VkTooManyAdPosts(VkPermanentError):
    """Too many advertisement posts."""


def _request_params(raw: Any) -> dict[str, str]:
    """VK echoes parameters as ``[{"key": ..., "value": ...}]``; keep that as a dict."""
    if not isinstance(raw, list):
        return {}
    return {str(item["key"]): str(item.get("value", "")) for item in raw
            if isinstance(item, dict) and "key" in item}


def error_from_payload(payload: Any, method: str, token: str | None = None) -> VkError:
    """The typed error for VK's ``error`` object (or an ``execute_errors`` item).

    ``token`` is removed from the message and echoed parameters wherever it appears.
    """
    if not isinstance(payload, dict):
        return VkPermanentError(None, redact_token(f"unexpected error value {payload!r}", token),
                                method)
    raw_code = payload.get("error_code")
    code = raw_code if isinstance(raw_code, int) and not isinstance(raw_code, bool) else None
    message = redact_token(str(payload.get("error_msg", "")), token)
    method = str(payload.get("method", method))
    params = {key: redact_token(value, token)
              for key, value in _request_params(payload.get("request_params")).items()}
    cls = ERROR_CLASSES.get(code, VkPermanentError) if code is not None else VkPermanentError
    if cls is VkCaptchaNeeded:
        sid, img = payload.get("captcha_sid"), payload.get("captcha_img")
        return VkCaptchaNeeded(code, message, method, request_params=params,
                               captcha_sid=None if sid is None else str(sid),
                               captcha_img=None if img is None else str(img))
    return cls(code, message, method, request_params=params)


def is_transient(exc: BaseException) -> bool:
    """True if repeating the failed call later may succeed."""
    return isinstance(exc, VkError) and exc.transient


def outcome_unknown(exc: BaseException) -> bool:
    """True if the failed call may nevertheless have taken effect on VK's side."""
    return isinstance(exc, VkError) and exc.outcome_unknown
