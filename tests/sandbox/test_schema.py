"""The schema helper: VK's mixed draft-3/draft-7 schema is enforced, refs resolve."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tools.vk_sandbox.api import METHODS
from tools.vk_sandbox.errors import ERROR_MESSAGES
from tools.vk_sandbox.schema import (
    VENDORED_SCHEMA_DIR,
    SchemaValidationError,
    callback_definition,
    load_schema,
    schema_dir,
    validate_callback,
    validate_error,
    validate_method_response,
    validate_object,
    validate_response,
)


def wall_item(**changes: Any) -> dict[str, Any]:
    item: dict[str, Any] = {"inner_type": "wall_wallpost", "id": 1, "owner_id": -1,
                            "from_id": -1, "date": 1700000000, "text": "hi", "post_type": "post"}
    item.update(changes)
    return {key: value for key, value in item.items() if value is not None}


class TestSchemaValidation:
    def test_schema_dir_is_found(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without VK_API_SCHEMA_DIR the schema is the copy vendored in the repository."""
        monkeypatch.delenv("VK_API_SCHEMA_DIR", raising=False)
        repository = Path(__file__).resolve().parents[2]
        assert schema_dir() == VENDORED_SCHEMA_DIR
        assert VENDORED_SCHEMA_DIR.is_relative_to(repository)
        assert (schema_dir() / "wall" / "objects.json").is_file()

    def test_valid_wall_get_reply_passes(self) -> None:
        """A well-formed wall.get reply validates, through cross-file $refs."""
        validate_response("wall_get_response", {"response": {"count": 1, "items": [wall_item()]}})

    def test_draft3_required_is_enforced(self) -> None:
        """``"required": true`` inside a property is enforced (draft-3 style)."""
        with pytest.raises(SchemaValidationError, match="'count' is a required property"):
            validate_response("wall_get_response", {"response": {"items": []}})

    def test_all_of_is_followed(self) -> None:
        """wall_wall_item is an allOf; its parts' constraints apply (Draft3 would skip them)."""
        with pytest.raises(SchemaValidationError, match="inner_type"):
            validate_response("wall_get_response",
                              {"response": {"count": 1, "items": [wall_item(inner_type=None)]}})
        with pytest.raises(SchemaValidationError, match="postponed"):
            validate_object("wall_wall_item", wall_item(post_type="postponed"))

    def test_types_are_checked_in_referenced_files(self) -> None:
        """A photo attachment missing a required field fails (photos/objects.json)."""
        attachment = {"type": "photo", "photo": {"id": 2, "owner_id": -1, "date": 1}}
        with pytest.raises(SchemaValidationError, match=r"album_id|has_tags"):
            validate_object("wall_wall_item", wall_item(attachments=[attachment]))

    def test_error_replies(self) -> None:
        """Errors are base_error objects under a single 'error' key."""
        validate_error({"error": {"inner_type": "base_error", "error_code": 5,
                                  "error_msg": "User authorization failed",
                                  "request_params": [{"key": "v", "value": "5.199"}]}})
        with pytest.raises(SchemaValidationError):
            validate_error({"error": {"inner_type": "base_error", "error_msg": "no code"}})
        with pytest.raises(SchemaValidationError):
            validate_error({"error": {"inner_type": "base_error", "error_code": 5},
                            "response": 1})

    def test_method_response_lookup(self) -> None:
        """Replies are checked against the definition methods.json names for the method."""
        validate_method_response("wall.delete", {"response": 1})
        with pytest.raises(SchemaValidationError):
            validate_method_response("wall.delete", {"response": 2})
        reference = load_schema().method_response_reference("wall.get", extended=True)
        assert reference == "wall/responses.json#/definitions/wall_get_extended_response"

    def test_callbacks(self) -> None:
        """Callbacks: envelope per callback_base, object per callback_<type> where defined."""
        envelope = {"type": "wall_post_new", "group_id": 1, "event_id": "a" * 40, "v": "5.199"}
        validate_callback({**envelope, "object": wall_item()})
        with pytest.raises(SchemaValidationError):
            validate_callback({**envelope, "object": wall_item(inner_type=None)})
        with pytest.raises(SchemaValidationError):
            validate_callback({**envelope, "type": "no_such_event", "object": {}})
        assert callback_definition("wall_repost") is not None
        assert callback_definition("wall_schedule_post_new") is None

    def test_env_override(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """VK_API_SCHEMA_DIR points the helper elsewhere."""
        monkeypatch.setenv("VK_API_SCHEMA_DIR", str(tmp_path))
        assert schema_dir() == tmp_path


class TestErrorMessages:
    def test_messages_match_vk(self) -> None:
        """The sandbox's error messages are VK's (errors.json descriptions)."""
        errors = json.loads((schema_dir() / "errors.json").read_text())["errors"]
        by_code: dict[int, set[str]] = {}
        for error in errors.values():
            by_code.setdefault(error["code"], set()).add(error["description"])
        for code, message in ERROR_MESSAGES.items():
            assert message in by_code[code], code


def references(node: Any) -> list[str]:
    """Every ``$ref`` string in a JSON document."""
    if isinstance(node, dict):
        return [reference for key, value in node.items()
                for reference in ([value] if key == "$ref" and isinstance(value, str)
                                  else references(value))]
    if isinstance(node, list):
        return [reference for value in node for reference in references(value)]
    return []


class TestVendoredSchema:
    def test_every_reference_reaches_a_vendored_file(self) -> None:
        """The vendored subset is closed: each $ref of each file names a file that is there."""
        missing = [
            f"{path.relative_to(VENDORED_SCHEMA_DIR)} -> {reference}"
            for path in sorted(VENDORED_SCHEMA_DIR.glob("**/*.json"))
            for reference in references(json.loads(path.read_text(encoding="utf-8")))
            if (file_part := reference.partition("#")[0])
            and not (path.parent / file_part).resolve().is_file()
        ]
        assert missing == []

    def test_every_sandbox_method_is_described(self) -> None:
        """Each method the sandbox serves has its response definition in the vendored copy."""
        schema = load_schema(VENDORED_SCHEMA_DIR)
        for method in METHODS:
            assert schema.has(schema.method_response_reference(method)), method

    def test_licence_and_source_are_kept(self) -> None:
        """VK's MIT licence and a note of the source and version travel with the copy."""
        assert "MIT License" in (VENDORED_SCHEMA_DIR / "LICENSE").read_text(encoding="utf-8")
        note = (VENDORED_SCHEMA_DIR / "README.md").read_text(encoding="utf-8")
        assert "VKCOM/vk-api-schema" in note and "5.199" in note
