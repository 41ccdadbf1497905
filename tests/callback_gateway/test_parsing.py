from __future__ import annotations

import json
from collections.abc import Callable

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.callback_gateway.parsing import (
    BadCallback,
    Callback,
    _fast_callback,
    _model_callback,
    parse_callback,
)


class TestParseCallback:
    def test_valid_event(self) -> None:
        """VK's envelope is read with every field."""
        body = json.dumps({"type": "wall_post_new", "group_id": 5, "event_id": "ab" * 20,
                           "v": "5.199", "object": {"id": 1}, "secret": "s"}).encode()
        callback = parse_callback(body)
        assert (callback.type, callback.group_id, callback.secret) == ("wall_post_new", 5, "s")
        assert callback.object == {"id": 1}

    @pytest.mark.parametrize(("body", "reason"), [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'{"group_id": 1}', "type: Field required"),
        (b'{"type": "x", "group_id": "1"}', "group_id: Input should be a valid integer"),
        (b'{"type": "x", "group_id": -3}', "group_id"),
        (b'{"type": 7, "group_id": 1}', "type: Input should be a valid string"),
        (b'{"type": "x", "group_id": 1, "object": [1]}', "object"),
        (b"[" * 100_000 + b"]" * 100_000, "body"),
    ])
    def test_bad_bodies_get_a_one_line_reason(self, body: bytes, reason: str) -> None:
        """Malformed JSON and wrong types are refused with a short reason naming the field."""
        with pytest.raises(BadCallback) as caught:
            parse_callback(body)
        assert reason in str(caught.value)
        assert "\n" not in str(caught.value)

    def test_reason_never_echoes_the_secret(self) -> None:
        """A wrongly typed secret is named, its value is not repeated."""
        with pytest.raises(BadCallback) as caught:
            parse_callback(b'{"type": "x", "group_id": 1, "secret": ["hunter2-secret"]}')
        assert "hunter2-secret" not in str(caught.value)


# --- the fast path against the model's path ------------------------------------------------

JSON_SCALARS = (st.none() | st.booleans() | st.integers(-2**70, 2**70)
                | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8))
JSON_VALUES = st.recursive(JSON_SCALARS, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=10)


def texts(limit: int) -> st.SearchStrategy[str]:
    """Strings around a length limit (both sides of it), with any characters."""
    return st.integers(0, limit + 2).flatmap(lambda size: st.text(min_size=size, max_size=size))


FIELDS: dict[str, st.SearchStrategy[object]] = {
    "type": texts(64) | JSON_VALUES,
    "group_id": (st.sampled_from([0, 1, -1, 2**63 - 1, 2**63, 2**64, True, 1.0, "5"])
                 | st.integers(-10, 2**64) | JSON_VALUES),
    "event_id": st.none() | texts(128) | JSON_VALUES,
    "v": st.none() | texts(16) | JSON_VALUES,
    "object": st.none() | st.dictionaries(st.text(max_size=5), JSON_VALUES, max_size=4) | JSON_VALUES,
    "secret": st.none() | texts(256) | JSON_VALUES,
    "extra": JSON_VALUES,
}
ENVELOPES = st.fixed_dictionaries({}, optional=FIELDS)


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    """Callback bodies as VK or anyone else might post them: envelopes with right and wrong
    fields, written with and without ASCII escapes, or any JSON, or any bytes."""
    kind = draw(st.sampled_from(["envelope", "envelope", "envelope", "json", "bytes"]))
    if kind == "bytes":
        return draw(st.binary(max_size=40))
    value = draw(ENVELOPES) if kind == "envelope" else draw(JSON_VALUES)
    return json.dumps(value, ensure_ascii=draw(st.booleans())).encode()


def outcome(parse: Callable[[bytes], Callback], body: bytes) -> object:
    """What a parser answers: the callback (``object`` compared as JSON), or the 400 reason."""
    try:
        callback = parse(body)
    except BadCallback as exc:
        return ("400", str(exc))
    return ("ok", callback.type, callback.group_id, callback.event_id, callback.v,
            callback.object, callback.secret, json.loads(callback.object_json))


class TestFastPath:
    @settings(max_examples=300, deadline=None)
    @given(bodies())
    def test_accepts_and_rejects_exactly_what_the_model_does(self, body: bytes) -> None:
        """The fast path (orjson + plain checks) and the model's path (json + pydantic) give
        the same callback, or the same 400 reason, for any body."""
        assert outcome(parse_callback, body) == outcome(_model_callback, body)

    @pytest.mark.parametrize("body", [
        b'{"type": "x", "group_id": 1, "object": {"n": 123456789012345678901234567890}}',
        b'{"type": "x", "group_id": 1, "object": {"n": -9223372036854775809}}',
        b'{"type": "x", "group_id": 1, "object": {"n": NaN}}',
        b'{"type": "x", "group_id": 1, "object": {"s": "\\ud800"}}',
        b'{"type": "\\ud800", "group_id": 1}',
        b'{"type": "x", "group_id": 1, "object": ' + b'{"a": ' * 300 + b"1" + b"}" * 301,
    ])
    def test_bodies_orjson_reads_differently_take_the_models_path(self, body: bytes) -> None:
        """Integers beyond 64 bits, NaN, lone surrogates, deep nesting: the same answer as the model."""
        assert outcome(parse_callback, body) == outcome(_model_callback, body)

    def test_a_plain_callback_takes_the_fast_path(self) -> None:
        """VK's ordinary callback is read by the fast path (so the comparison above compares
        two paths), and its object travels as the JSON the model would write."""
        body = b'{"type": "x", "group_id": 1, "secret": "s", "object": {"t": "\\u00e9", "n": 1.5}}'
        fast = _fast_callback(orjson.loads(body))
        assert fast is not None and fast == parse_callback(body)
        assert json.loads(fast.object_json) == {"t": "é", "n": 1.5}
