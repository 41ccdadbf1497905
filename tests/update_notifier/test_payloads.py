from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from services.update_notifier.auth import is_authorized, presented_token
from services.update_notifier.payloads import (
    BadRequest,
    GetUpdatesRequest,
    Legacy,
    Resume,
    StartChain,
    parse_get_updates,
    parse_in_full,
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

    @pytest.mark.parametrize(("body", "expected"), [
        (b'{"clientVersion": "1.2"}', Legacy()),
        (b'{"since": "v1.1", "at": 1733140800}', Legacy()),
        (b'{"cursor": null, "clientVersion": "1.2"}', StartChain()),
        (b'{"cursor": "v1.42", "clientVersion": "1.2", "tab": {"id": 3}}', Resume(42)),
    ])
    def test_unknown_fields_are_ignored(self, body: bytes, expected: GetUpdatesRequest) -> None:
        """A frontend that adds a field (a client version, a timestamp) keeps its updates:
        the body means what its ``cursor`` alone means."""
        assert parse_get_updates(body) == expected

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
        (b'{"cursor": "yesterday"}', "cursor is malformed"),
        (b'{"cursor": "yesterday", "clientVersion": "1.2"}', "cursor is malformed"),
        (b'{"clientVersion": "1.2", "cursor": 5}', "cursor: Input should be a valid string"),
    ])
    def test_bad_bodies_are_refused_in_one_line(self, body: bytes, reason: str) -> None:
        """Non-JSON, wrong types and malformed cursors name the problem, on one line, with
        or without other fields next to them."""
        with pytest.raises(BadRequest) as caught:
            parse_get_updates(body)
        assert str(caught.value) == reason


def outcome(parse: Callable[[bytes], GetUpdatesRequest], body: bytes) -> object:
    """What a parser makes of ``body``: the request, or the one-line refusal."""
    try:
        return parse(body)
    except BadRequest as exc:
        return f"400: {exc}"


# Bodies that look like ``{"cursor": "v1.N"}``: each part either as a client would send
# it (JSON whitespace, a cursor we issue) or slightly off (\v and \f are no JSON
# whitespace, leading zeros, too many digits, escapes, other keys, values and endings).
_JSON_SPACE = st.text(alphabet=" \t\n\r", max_size=3)
_SPACE = st.one_of(_JSON_SPACE, st.text(alphabet=" \t\n\r\x0b\x0c\xa0", max_size=3))
_NUMBER = st.from_regex(r"0|[1-9][0-9]{0,17}", fullmatch=True)
_VALUE = st.one_of(_NUMBER.map(lambda number: f'"v1.{number}"'),
                   st.from_regex(r"[1-9][0-9]{18,19}|0[0-9]{1,3}|-1", fullmatch=True).map(
                       lambda number: f'"v1.{number}"'),
                   st.sampled_from(['"v2.1"', '"v1.\\u0031"', "null", '""', "7", '"V1.1"']))
_KEY = st.one_of(st.just('"cursor"'),
                 st.sampled_from(['"Cursor"', '"cursor "', "cursor", '"\\u0063ursor"']))
_TAIL = st.one_of(st.just("}"), st.sampled_from(["}}", ', "x": 1}', "", "} x"]))


@st.composite
def resume_like(draw: st.DrawFn) -> bytes:
    space = _JSON_SPACE if draw(st.booleans()) else _SPACE
    value = draw(_NUMBER.map(lambda number: f'"v1.{number}"')) if draw(st.booleans()) else draw(_VALUE)
    key = '"cursor"' if draw(st.booleans()) else draw(_KEY)
    tail = "}" if draw(st.booleans()) else draw(_TAIL)
    parts = [draw(space), "{", draw(space), key, draw(space), ":", draw(space), value,
             draw(space), tail, draw(space)]
    return "".join(parts).encode()


class TestResumeShortcut:
    @given(resume_like())
    def test_the_shortcut_answers_as_the_json_parser_and_model_do(self, body: bytes) -> None:
        """The regular expression for the common body never changes an answer: what it
        takes it reads as the full parser would, and anything else goes to that parser."""
        assert outcome(parse_get_updates, body) == outcome(parse_in_full, body)

    @pytest.mark.parametrize(("body", "expected"), [
        (b'{"cursor": "v1.42"}', Resume(42)),
        (b' \r\n{\t"cursor"\n:"v1.0" }\n', Resume(0)),
        (b'{"cursor": "v1.999999999999999999"}', Resume(10**18 - 1)),
        (b'{"cursor": "v1.\\u0034"}', Resume(4)),  # an escape: the full parser's
        (b'{"cursor": "v1.07"}', "400: cursor is malformed"),
        (b'{"cursor": "v1.1000000000000000000"}', "400: cursor is malformed"),
        (b'{"cursor": "v1.1"\x0b}', "400: body is not valid JSON"),
        (b'{"cursor": "v1.1"}}', "400: body is not valid JSON"),
    ])
    def test_near_misses_get_the_full_parsers_answer(self, body: bytes, expected: object) -> None:
        """Edge cases of the shortcut's pattern, answered as before it existed."""
        assert outcome(parse_get_updates, body) == expected == outcome(parse_in_full, body)


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
