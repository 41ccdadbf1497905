"""VK API errors: codes, VK's messages for them, and the exception that carries one."""

from __future__ import annotations

# Messages as VK writes them (the descriptions in the schema's errors.json); a detail
# is appended after a colon, as VK does ("Access denied: no access to call this method").
ERROR_MESSAGES: dict[int, str] = {
    1: "Unknown error occurred",
    3: "Unknown method passed",
    5: "User authorization failed",
    6: "Too many requests per second",
    7: "Permission to perform this action is denied",
    8: "Invalid request",
    9: "Flood control",
    10: "Internal server error",
    12: "Unable to compile code",
    13: "Runtime error occurred during code invocation",
    14: "Captcha needed",
    15: "Access denied",
    18: "User was deleted or banned",
    23: "This method was disabled",
    27: "Group authorization failed",
    29: "Rate limit reached",
    30: "This profile is private",
    100: "One of the parameters specified was missing or invalid",
    104: "Not found",
    113: "Invalid user id",
    200: "Access denied",
    203: "Access to group denied",
    210: "Access to wall's post denied",
    214: "Access to adding post denied",
    219: "Advertisement post was recently added",
    220: "Too many recipients",
    224: "Too many ads posts",
    2000: "Servers number limit is reached",
}

UNKNOWN_ERROR = 1
UNKNOWN_METHOD = 3
AUTH_FAILED = 5
TOO_MANY_REQUESTS = 6
INVALID_REQUEST = 8
INTERNAL_SERVER_ERROR = 10
COMPILE_ERROR = 12
RUNTIME_ERROR = 13
ACCESS_DENIED = 15
GROUP_AUTH_FAILED = 27
INVALID_PARAM = 100
NOT_FOUND = 104
WALL_POST_ACCESS_DENIED = 210
CALLBACK_SERVERS_LIMIT = 2000

# Details VK gives for the common cases, so clients that log messages see familiar text.
DETAIL_NO_TOKEN = "no access_token passed."
DETAIL_INVALID_TOKEN = "invalid access_token (4)."
DETAIL_GROUP_AUTH = "method is unavailable with group auth."
DETAIL_NO_VERSION = "v (version) is required"


def error_message(code: int, detail: str | None = None) -> str:
    """VK's ``error_msg`` for ``code``, with ``detail`` appended as VK does."""
    base = ERROR_MESSAGES.get(code, f"Error {code}")
    return f"{base}: {detail}" if detail else base


class VkApiError(Exception):
    """A VK API error reply: ``{"error": {"error_code": code, "error_msg": message}}``."""

    def __init__(self, code: int, detail: str | None = None) -> None:
        self.code = code
        self.detail = detail
        super().__init__(self.message)

    @property
    def message(self) -> str:
        return error_message(self.code, self.detail)


def missing_param(name: str) -> VkApiError:
    return VkApiError(INVALID_PARAM, f"{name} is undefined")


def invalid_param(name: str, why: str) -> VkApiError:
    return VkApiError(INVALID_PARAM, f"{name} {why}")
