from __future__ import annotations

from typing import Any

import pytest
from bson import Decimal128, Int64

from services.post_tracker.variables import Substitution, merge_variables, substitute, value_text


class TestMergeVariables:
    def test_project_value_wins_over_global(self) -> None:
        """A project's own variable overrides the global one of the same name."""
        documents: list[dict[str, Any]] = [
            {"name": "city", "value": "Moscow", "project_id": None},
            {"name": "city", "value": "Kazan", "project_id": "p1"},
            {"name": "phone", "value": "100", "project_id": None},
        ]
        assert merge_variables(documents, "p1") == {"city": "Kazan", "phone": "100"}

    def test_order_of_documents_does_not_matter(self) -> None:
        """The project's value wins even when the global one comes later."""
        documents: list[dict[str, Any]] = [
            {"name": "city", "value": "Kazan", "project_id": "p1"},
            {"name": "city", "value": "Moscow", "project_id": None},
        ]
        assert merge_variables(documents, "p1") == {"city": "Kazan"}

    def test_other_projects_are_ignored(self) -> None:
        """Another project's variable never leaks in."""
        documents = [{"name": "city", "value": "Omsk", "project_id": "p2"}]
        assert merge_variables(documents, "p1") == {}

    def test_missing_value_is_empty_and_values_are_text(self) -> None:
        """A null value substitutes as nothing; numbers as their text; names are trimmed."""
        documents: list[dict[str, Any]] = [{"name": " empty ", "value": None, "project_id": None},
                                           {"name": "year", "value": 2025, "project_id": None}]
        assert merge_variables(documents, "p1") == {"empty": "", "year": "2025"}


class TestValueText:
    @pytest.mark.parametrize(("stored", "text"), [
        (None, ""), (100, "100"), (100.0, "100"), (Int64(7), "7"), (1.5, "1.5"),
        (Decimal128("100.00"), "100"), (Decimal128("9.90"), "9.90"), (True, "true"),
        ("as is", "as is"),
    ])
    def test_values_as_the_user_wrote_them(self, stored: Any, text: str) -> None:
        """null is empty; a whole number is written without ``.0`` whatever its BSON type."""
        assert value_text(stored) == text

    def test_project_ids_are_not_compared_as_strings(self) -> None:
        """A variable of project ``5`` (int) is not one of project ``"5"``, and back."""
        documents: list[dict[str, Any]] = [{"name": "a", "value": "int", "project_id": 5},
                     {"name": "b", "value": "str", "project_id": "5"}]
        assert merge_variables(documents, 5) == {"a": "int"}
        assert merge_variables(documents, "5") == {"b": "str"}


class TestSubstitute:
    def test_known_placeholders_are_replaced(self) -> None:
        """``{{name}}`` becomes the value, with or without spaces inside the braces."""
        result = substitute("Hi {{name}}, call {{ phone }} or {{  phone}}",
                            {"name": "Ann", "phone": "100"})
        assert result == Substitution("Hi Ann, call 100 or 100", ())

    def test_unknown_placeholders_stay_as_written_and_are_reported(self) -> None:
        """An unknown name is left verbatim (spaces included) and reported once."""
        result = substitute("{{ nope }} and {{nope}} and {{x}}", {})
        assert result.text == "{{ nope }} and {{nope}} and {{x}}"
        assert result.unknown == ("nope", "x")

    def test_values_are_not_expanded_again(self) -> None:
        """Substitution is one pass: a value containing a placeholder is inserted as is."""
        assert substitute("{{a}}", {"a": "{{b}}", "b": "B"}).text == "{{b}}"

    def test_text_without_placeholders_is_unchanged(self) -> None:
        """Single braces and plain text pass through untouched."""
        text = "{single} braces, {{ unterminated"
        assert substitute(text, {"single": "x"}) == Substitution(text, ())

    def test_names_are_case_sensitive(self) -> None:
        """``{{Name}}`` and ``{{name}}`` are different variables."""
        assert substitute("{{Name}}", {"name": "x"}).unknown == ("Name",)
