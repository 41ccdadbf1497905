from __future__ import annotations

import pytest
from pydantic import SecretStr

from services.update_notifier.auth import is_authorized, presented_token
from services.update_notifier.payloads import (
    BadRequest,
    Legacy,
    Resume,
    StartChain,
    parse_get_updates,
)


class TestParseGetUpdates:
    @pytest.mark.parametrize("body", [b"", b"  \n", b"{}", b" { } "])
    def test_empty_body_or_object_is_legacy(self, body: bytes) -> None:
        """The original frontend sends nothing or ``{}``."""
        assert parse_get_updates(body) == Legacy()

    @pytest.mark.parametrize("body", [b'{"cursor": null}', b'{"cursor": ""}'])
    def test_null_or_empty_cursor_starts_a_chain(self, body: bytes) -> None:
        """A client without a cursor yet asks for one."""
        assert parse_get_updates(body) == StartChain()

    def test_cursor_resumes_after_its_seq(self) -> None:
        """A cursor names the last seq the client has seen."""
        assert parse_get_updates(b'{"cursor": "v1.42"}') == Resume(42)

    @pytest.mark.parametrize(("body", "reason"), [
        (b"{", "body is not valid JSON"),
        (b"\xff\xfe", "body is not valid JSON"),
        (b"cursor=v1.1", "body is not valid JSON"),
        (b"[]", "body: Input should be an object"),
        (b'"v1.1"', "body: Input should be an object"),
        (b'{"cursor": 5}', "cursor: Input should be a valid string"),
        (b'{"cursor": ["v1.1"]}', "cursor: Input should be a valid string"),
        (b'{"since": "v1.1"}', "since: Extra inputs are not permitted"),
        (b'{"cursor": "v1.1", "x": 1}', "x: Extra inputs are not permitted"),
        (b'{"cursor": "yesterday"}', "cursor is malformed"),
    ])
    def test_bad_bodies_are_refused_in_one_line(self, body: bytes, reason: str) -> None:
        """Non-JSON, wrong types and unknown fields name the problem, on one line."""
        with pytest.raises(BadRequest) as caught:
            parse_get_updates(body)
        assert str(caught.value) == reason


class TestBearerToken:
    def test_no_configured_token_lets_everyone_in(self) -> None:
        """``NOTIFIER_TOKEN`` unset: the API is open (behind the deployment's own guard)."""
        assert is_authorized(None, None)

    def test_matching_bearer_token_is_accepted(self) -> None:
        """The header's scheme is case-insensitive, the token is not."""
        token = presented_token("bearer s3cret")
        assert token == "s3cret"
        assert is_authorized(SecretStr("s3cret"), token)
        assert not is_authorized(SecretStr("s3cret"), presented_token("Bearer S3CRET"))

    def test_missing_or_other_scheme_is_refused(self) -> None:
        """No header, or Basic credentials, present no token."""
        assert presented_token(None) is None
        assert presented_token("Basic czNjcmV0") is None
        assert not is_authorized(SecretStr("s3cret"), None)

    def test_query_token_counts_only_where_allowed(self) -> None:
        """``?access_token=`` is passed in only for the stream; the header wins over it."""
        assert presented_token(None, "s3cret") == "s3cret"
        assert presented_token("Bearer other", "s3cret") == "other"
