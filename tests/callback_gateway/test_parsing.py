from __future__ import annotations

import json

import pytest

from services.callback_gateway.parsing import BadCallback, parse_callback


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
