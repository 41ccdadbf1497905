from __future__ import annotations

from typing import Any

from services.post_tracker.variables import Substitution, merge_variables, substitute


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
