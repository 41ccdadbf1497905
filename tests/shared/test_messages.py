from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.messages import CallbackEvent, callback_event_json


class TestCallbackEventJson:
    @pytest.mark.parametrize(("object_json", "object_value"), [
        (b'{"id":7,"text":"\xc3\xa9\\n"}', {"id": 7, "text": "é\n"}),
        (b"null", None),
    ])
    @pytest.mark.parametrize("retry_counter", [None, 3])
    def test_the_model_reads_it_back(self, object_json: bytes, object_value: object,
                                     retry_counter: int | None) -> None:
        """The gateway's hand-written serialisation is exactly a CallbackEvent, on one line."""
        received_at = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
        body = callback_event_json(
            correlation_id="c1", type="wall_post_new", group_id=5, event_id="e1", v="5.199",
            object_json=object_json, project_id="p1", received_at=received_at,
            retry_counter=retry_counter)
        assert b"\n" not in body  # a batch is one event per line
        assert CallbackEvent.model_validate_json(body) == CallbackEvent(
            correlation_id="c1", type="wall_post_new", group_id=5, event_id="e1", v="5.199",
            object=object_value, project_id="p1", received_at=received_at,
            retry_counter=retry_counter)
