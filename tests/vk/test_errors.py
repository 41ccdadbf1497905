from __future__ import annotations

import pickle
import traceback
from typing import Any

import pytest

from shared.vk.errors import (
    ERROR_CLASSES,
    VkAccessDenied,
    VkAuthError,
    VkCaptchaNeeded,
    VkError,
    VkFloodControl,
    VkGroupAuthError,
    VkHttpError,
    VkInternalError,
    VkInvalidParameter,
    VkMalformedResponse,
    VkNetworkError,
    VkPermanentError,
    VkTooManyRequests,
    VkTransientError,
    VkUnexpectedStatus,
    VkUnknownOutcome,
    error_from_payload,
    is_transient,
    outcome_unknown,
)

TOKEN = "vk1.a.errors-test-token-0123456789abcdefghijklmnop"
PERMANENT_CODES = [5, 7, 14, 15, 18, 27, 28, 29, 100, 113, 203, 210, 214, 219, 220, 222, 224]


def vk_error(code: int, message: str = "message", **extra: Any) -> dict[str, Any]:
    return {"error_code": code, "error_msg": message, **extra}


class TestErrorFromPayload:
    @pytest.mark.parametrize(("code", "cls"), [
        (5, VkAuthError), (6, VkTooManyRequests), (9, VkFloodControl), (10, VkInternalError),
        (14, VkCaptchaNeeded), (15, VkAccessDenied), (27, VkGroupAuthError),
        (100, VkInvalidParameter),
    ])
    def test_known_codes_become_their_class(self, code: int, cls: type[VkError]) -> None:
        """Each VK error code named in the spec is raised as its own class."""
        error = error_from_payload(vk_error(code, "text"), "wall.get")
        assert type(error) is cls
        assert (error.code, error.message, error.method) == (code, "text", "wall.get")

    def test_unknown_code_is_permanent(self) -> None:
        """A code this client does not know is not retried."""
        error = error_from_payload(vk_error(4242), "wall.get")
        assert type(error) is VkPermanentError
        assert error.code == 4242
        assert not is_transient(error)

    @pytest.mark.parametrize("code", [6, 9, 10])
    def test_transient_codes(self, code: int) -> None:
        """6, 9 and 10 may succeed if repeated."""
        error = error_from_payload(vk_error(code), "wall.get")
        assert isinstance(error, VkTransientError)
        assert is_transient(error)

    @pytest.mark.parametrize("code", PERMANENT_CODES)
    def test_permanent_codes(self, code: int) -> None:
        """Auth, access, parameter and policy errors are never retried."""
        error = error_from_payload(vk_error(code), "wall.get")
        assert isinstance(error, VkPermanentError)
        assert not is_transient(error)
        assert code in ERROR_CLASSES

    def test_captcha_details_are_kept(self) -> None:
        """Error 14 carries what a human would need to solve the captcha."""
        error = error_from_payload(vk_error(14, captcha_sid=123, captcha_img="https://x/c"),
                                   "wall.post")
        assert isinstance(error, VkCaptchaNeeded)
        assert (error.captcha_sid, error.captcha_img) == ("123", "https://x/c")

    def test_execute_error_names_its_own_method(self) -> None:
        """An ``execute_errors`` item names the inner method, which wins over ``execute``."""
        error = error_from_payload({**vk_error(15), "method": "wall.get"}, "execute")
        assert error.method == "wall.get"

    @pytest.mark.parametrize("payload", ["boom", None, {"error_msg": "no code"}])
    def test_odd_payloads_become_permanent_errors(self, payload: object) -> None:
        """An error object not shaped as expected still gives a permanent VkError."""
        assert type(error_from_payload(payload, "wall.get")) is VkPermanentError


class TestOutcomeClassification:
    @pytest.mark.parametrize("error", [
        VkNetworkError("refused", "wall.post"),
        VkUnknownOutcome("timeout", "wall.post"),
        VkHttpError(502, "Bad Gateway", "wall.post"),
        VkMalformedResponse("truncated", "wall.post"),
    ])
    def test_failures_outside_the_api_are_transient(self, error: VkError) -> None:
        """Network trouble, 5xx and garbled bodies may pass if repeated."""
        assert is_transient(error)

    def test_which_failures_leave_the_outcome_unknown(self) -> None:
        """Only failures proving nothing happened let a wall.post be repeated."""
        nothing_happened = [VkNetworkError("refused", "m"),
                            error_from_payload(vk_error(6), "m"),
                            error_from_payload(vk_error(9), "m")]
        maybe_happened = [VkUnknownOutcome("timeout", "m"), VkHttpError(503, "", "m"),
                          VkMalformedResponse("", "m"), error_from_payload(vk_error(10), "m")]
        assert [outcome_unknown(error) for error in nothing_happened] == [False] * 3
        assert [outcome_unknown(error) for error in maybe_happened] == [True] * 4
        assert isinstance(VkUnknownOutcome("t", "m"), VkNetworkError)

    def test_other_http_statuses_are_permanent(self) -> None:
        """A 4xx means the request itself is wrong."""
        assert not is_transient(VkUnexpectedStatus(404, "Not Found", "wall.get"))

    def test_non_vk_exceptions_are_not_transient(self) -> None:
        """``is_transient`` answers only for VK errors."""
        assert not is_transient(ValueError("x"))
        assert not outcome_unknown(TimeoutError())


class TestErrorRedaction:
    def test_token_in_message_and_echoed_params_is_removed(self) -> None:
        """VK echoes request_params and may quote the token; neither survives."""
        payload = vk_error(5, f"User authorization failed: invalid access_token {TOKEN}",
                           request_params=[
                               {"key": "method", "value": "wall.get"},
                               {"key": "access_token", "value": TOKEN},
                               {"key": "secret_key", "value": "callback-secret"},
                               {"key": "note", "value": f"access_token={TOKEN}"},
                           ])
        error = error_from_payload(payload, "wall.get", TOKEN)

        rendered = [str(error), repr(error), "".join(traceback.format_exception(error)),
                    repr(error.request_params), repr(error.args), repr(pickle.dumps(error))]
        for text in rendered:
            assert TOKEN not in text
            assert "callback-secret" not in text
        assert error.request_params == {"method": "wall.get", "note": "access_token=***"}

    def test_errors_survive_pickling(self) -> None:
        """An error sent to another process arrives whole, and still without the token."""
        error = error_from_payload(vk_error(14, "Captcha", captcha_sid="7"), "wall.post")
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is VkCaptchaNeeded
        assert (repr(copy), copy.captcha_sid) == (repr(error), "7")

    def test_str_and_repr_name_code_method_and_message(self) -> None:
        """The rendering says what failed, where, and VK's words for it."""
        error = error_from_payload(vk_error(15, "Access denied"), "wall.get")
        assert str(error) == "VK error 15 in wall.get: Access denied"
        assert repr(error) == ("VkAccessDenied(code=15, message='Access denied', "
                               "method='wall.get')")
