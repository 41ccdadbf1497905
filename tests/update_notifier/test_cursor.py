from __future__ import annotations

import pytest

from services.update_notifier.cursor import (
    CursorVerdict,
    InvalidCursor,
    classify,
    first_appearances,
    format_cursor,
    has_gap,
    head_span,
    legacy_range,
    parse_cursor,
)


class TestFormatAndParse:
    @pytest.mark.parametrize("seq", [0, 1, 42, 10**17, 10**18 - 1])
    def test_round_trip(self, seq: int) -> None:
        """Every seq survives formatting and parsing unchanged."""
        assert parse_cursor(format_cursor(seq)) == seq

    def test_format_is_versioned(self) -> None:
        """The wire form names its version, so it can change without breaking old clients."""
        assert format_cursor(7) == "v1.7"

    @pytest.mark.parametrize("text", ["", "7", "v1.", "v1.x", "v2.7", "v1.-1", "v1.07", " v1.7",
                                      "v1.7 ", "v1.7\n", "V1.7", "v1.1000000000000000000", "v1.٣"])
    def test_rejects_anything_it_did_not_issue(self, text: str) -> None:
        """Garbage, other versions, padding and out-of-range numbers are invalid."""
        with pytest.raises(InvalidCursor, match=r"^cursor is malformed$"):
            parse_cursor(text)

    def test_refuses_to_format_a_negative_seq(self) -> None:
        """A negative position is a bug, not a cursor."""
        with pytest.raises(ValueError):
            format_cursor(-1)


class TestClassify:
    def test_at_the_latest_entry_is_ok(self) -> None:
        """Nothing new: fine, whatever has expired."""
        assert classify(10, oldest=None, latest=10) is CursorVerdict.OK

    def test_fresh_log_is_ok_at_zero(self) -> None:
        """A chain started on an empty log is at seq 0."""
        assert classify(0, oldest=None, latest=0) is CursorVerdict.OK

    def test_ahead_of_the_log_is_invalid(self) -> None:
        """A cursor from the future was not issued by this log."""
        assert classify(11, oldest=1, latest=10) is CursorVerdict.INVALID

    def test_behind_with_the_next_entry_retained_is_ok(self) -> None:
        """The reader can continue when the entry right after its cursor is still there."""
        assert classify(4, oldest=5, latest=10) is CursorVerdict.OK
        assert classify(4, oldest=1, latest=10) is CursorVerdict.OK

    def test_behind_with_the_next_entry_expired_needs_resync(self) -> None:
        """Entries after the cursor have expired: the reader must reload everything."""
        assert classify(4, oldest=6, latest=10) is CursorVerdict.RESYNC

    def test_behind_an_emptied_log_needs_resync(self) -> None:
        """Everything after the cursor expired."""
        assert classify(4, oldest=None, latest=10) is CursorVerdict.RESYNC

    def test_oldest_past_latest_needs_resync(self) -> None:
        """Read in two steps, the oldest can be newer than the latest: still a resync."""
        assert classify(4, oldest=12, latest=10) is CursorVerdict.RESYNC


class TestHasGap:
    def test_contiguous_entries_have_no_gap(self) -> None:
        """Entries continuing the cursor one by one are complete."""
        assert not has_gap(4, [5, 6, 7])

    def test_no_entries_is_no_gap(self) -> None:
        """An empty page says nothing is missing."""
        assert not has_gap(4, [])

    def test_missing_first_entry_is_a_gap(self) -> None:
        """The entry right after the cursor is gone."""
        assert has_gap(4, [6, 7])

    def test_hole_in_the_middle_is_a_gap(self) -> None:
        """An entry deleted out of order is noticed too."""
        assert has_gap(4, [5, 7])


class TestLegacyRange:
    def test_first_call_ever_reports_everything_retained(self) -> None:
        """No legacy cursor yet: everything up to the latest entry."""
        assert legacy_range(None, 10) == (0, 10)

    def test_first_call_on_an_empty_log_reports_nothing(self) -> None:
        """Nothing was ever logged."""
        assert legacy_range(None, 0) is None

    def test_reports_what_came_since_the_previous_call(self) -> None:
        """The range is (previous, latest]."""
        assert legacy_range(7, 10) == (7, 10)

    def test_nothing_new_reports_nothing(self) -> None:
        """A second call right after the first gets nothing."""
        assert legacy_range(10, 10) is None

    def test_cursor_moved_past_us_by_another_replica_reports_nothing(self) -> None:
        """Another replica already reported up to a newer position."""
        assert legacy_range(12, 10) is None


class TestHeadSpan:
    def test_a_cursor_inside_the_head_reads_up_to_the_tail(self) -> None:
        """Between base and tail (both included), the span is every seq after the cursor."""
        assert head_span(7, base=5, tail=10, limit=100) == range(8, 11)
        assert head_span(5, base=5, tail=10, limit=100) == range(6, 11)

    def test_a_cursor_at_the_tail_reads_nothing(self) -> None:
        """Nothing new: an empty span, so the answer keeps the cursor."""
        assert head_span(10, base=5, tail=10, limit=100) == range(11, 11)
        assert head_span(0, base=0, tail=0, limit=100) == range(1, 1)

    def test_the_limit_caps_the_span(self) -> None:
        """A reader far behind gets ``limit`` entries per poll, like from the log."""
        assert head_span(5, base=0, tail=100, limit=3) == range(6, 9)

    def test_a_cursor_older_than_the_head_is_not_its_to_answer(self) -> None:
        """Before ``base`` the head does not know what the log holds."""
        assert head_span(4, base=5, tail=10, limit=100) is None

    def test_a_cursor_ahead_of_the_tail_is_not_its_to_answer(self) -> None:
        """Issued by a replica that followed further: the log answers, never "nothing new"."""
        assert head_span(11, base=5, tail=10, limit=100) is None

    def test_refuses_a_limit_below_one(self) -> None:
        """A poll that may read nothing would never move a cursor that is behind."""
        with pytest.raises(ValueError):
            head_span(5, base=0, tail=10, limit=0)


class TestFirstAppearances:
    def test_distinct_in_order_of_first_appearance(self) -> None:
        """Like the log's answer: each project once, where it first appears."""
        assert first_appearances(["p2", "p1", "p2", "p3", "p1"]) == ["p2", "p1", "p3"]

    def test_nothing_is_an_empty_answer(self) -> None:
        """An empty span answers an empty list (not None)."""
        assert first_appearances([]) == []

    def test_a_hole_means_no_answer(self) -> None:
        """An expired or removed entry: resync or not is for the log to judge."""
        assert first_appearances(["p1", None, "p2"]) is None
        assert first_appearances([None]) is None
