"""The tolerant readers of ``projects`` and ``system_posts``: what they accept, how they refuse."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from bson import Decimal128, Int64, ObjectId

from shared.documents import (
    DocumentError,
    Project,
    SystemPost,
    bson_type,
    id_label,
    ids_labelled,
    is_usable_id,
)

WHEN = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
OID = ObjectId("65a000000000000000000001")


def post(**fields: Any) -> dict[str, Any]:
    return {"_id": OID, "project_id": "p1", "text": "hi", "attachments": [],
            "publication_date": WHEN, "status": "pending_publication", **fields}


class TestProject:
    @pytest.mark.parametrize(("stored", "group_id"), [
        (123456, 123456), (123456.0, 123456), (Int64(123456), 123456),
        (Decimal128("123456"), 123456), (666795647.0, 666795647),
    ], ids=["int", "double", "int64", "decimal", "issue-example"])
    def test_whole_numbers_of_any_bson_type_are_group_ids(self, stored: Any,
                                                          group_id: int) -> None:
        """An integral double, an int64 or a decimal is the int it holds."""
        project = Project.from_document({"_id": "p", "vk_group_id": stored,
                                         "vk_user_token": "t"})
        assert (project.group_id, project.problem) == (group_id, None)

    @pytest.mark.parametrize(("fields", "reason"), [
        ({"vk_group_id": 1.5}, "vk_group_id: expected an integer, got double"),
        ({"vk_group_id": "123"}, "vk_group_id: expected an integer, got string"),
        ({"vk_group_id": True}, "vk_group_id: expected an integer, got bool"),
        ({"vk_user_token": 5}, "vk_user_token: expected a string, got int"),
        ({"_id": None}, "_id: expected an id, got null"),
        ({"_id": [1]}, "_id: expected an id, got array"),
    ])
    def test_unusable_fields_are_named_with_their_type(self, fields: dict[str, Any],
                                                       reason: str) -> None:
        """The error names the field and the type found, never the value."""
        with pytest.raises(DocumentError) as raised:
            Project.from_document({"_id": "p", "vk_group_id": 1, "vk_user_token": "t", **fields})
        assert str(raised.value) == reason

    @pytest.mark.parametrize(("fields", "problem"), [
        ({}, "vk_group_id: missing"),
        ({"vk_group_id": -5, "vk_user_token": "t"}, "vk_group_id: expected a positive integer"),
        ({"vk_group_id": 5}, "vk_user_token: missing"),
        ({"vk_group_id": 5, "vk_user_token": ""}, "vk_user_token: missing"),
    ])
    def test_missing_parts_are_a_problem_not_an_error(self, fields: dict[str, Any],
                                                      problem: str) -> None:
        """The gateway needs no token; the tracker and refresher ask :attr:`problem`."""
        assert Project.from_document({"_id": "p", **fields}).problem == problem

    def test_ids_keep_their_bson_type(self) -> None:
        """An ObjectId or int _id stays one (it is queried as such)."""
        assert Project.from_document({"_id": OID}).id == OID
        assert Project.from_document({"_id": 7}).id == 7
        assert Project.from_document({"_id": 7.0}).id == 7

    def test_repr_and_errors_never_show_secrets(self) -> None:
        """Neither the token nor the callback secret are in repr, str or an error."""
        project = Project.from_document({"_id": "p", "vk_group_id": 1,
                                         "vk_user_token": "TOKEN-123",
                                         "vk_callback_secret": "SECRET-456"})
        assert "TOKEN-123" not in repr(project) and "SECRET-456" not in repr(project)
        assert "TOKEN-123" not in str(project)
        with pytest.raises(DocumentError) as raised:
            Project.from_document({"_id": "p", "vk_group_id": "TOKEN-123"})
        assert "TOKEN-123" not in str(raised.value)


class TestSystemPost:
    @pytest.mark.parametrize(("stored", "attachments"), [
        (["photo-1_2", "photo-1_3"], ("photo-1_2", "photo-1_3")),
        ("photo-1_2,photo-1_3", ("photo-1_2", "photo-1_3")),
        (" photo-1_2 , ,photo-1_3,", ("photo-1_2", "photo-1_3")),
        ("", ()), (None, ()), ([], ()),
    ], ids=["list", "comma-string", "spaces-and-empties", "empty-string", "null", "empty"])
    def test_attachments_as_a_list_or_vk_comma_string(self, stored: Any,
                                                      attachments: tuple[str, ...]) -> None:
        """VK's own comma string is split into ids, never into characters."""
        assert SystemPost.from_document(post(attachments=stored)).attachments == attachments

    def test_missing_attachments_and_text(self) -> None:
        """No ``attachments`` or ``text`` field: none, empty text."""
        document = post()
        del document["attachments"], document["text"]
        read = SystemPost.from_document(document)
        assert (read.attachments, read.text, read.stored_text) == ((), "", None)

    @pytest.mark.parametrize(("stored", "read"), [
        (datetime(2025, 1, 1, 12, 0), WHEN),
        (datetime(2025, 1, 1, 15, 0, tzinfo=timezone(timedelta(hours=3))), WHEN),
    ], ids=["naive-is-utc", "offset"])
    def test_dates_are_utc(self, stored: datetime, read: datetime) -> None:
        """A naive datetime is UTC; an aware one is converted to UTC."""
        value = SystemPost.from_document(post(publication_date=stored)).publication_date
        assert value == read and value.tzinfo == UTC

    @pytest.mark.parametrize(("project_id", "kept"), [
        ("p1", "p1"), (OID, OID), (7, 7), (Int64(7), 7), (7.0, 7),
    ])
    def test_project_ids_keep_their_type(self, project_id: Any, kept: Any) -> None:
        """Never turned into strings: ``7`` stays an int, an ObjectId stays one."""
        read = SystemPost.from_document(post(project_id=project_id)).project_id
        assert read == kept and type(read) is type(kept)

    def test_vk_post_id_as_double(self) -> None:
        """A ``vk_post_id`` stored as a double is the post id (way 1 uses it)."""
        assert SystemPost.from_document(post(vk_post_id=1234.0)).vk_post_id == 1234

    @pytest.mark.parametrize(("fields", "reason"), [
        ({"project_id": None}, "project_id: expected an id, got null"),
        ({"project_id": {"$oid": "x"}}, "project_id: expected an id, got object"),
        ({"publication_date": "2025-01-01"}, "publication_date: expected a date, got string"),
        ({"publication_date": 1735725600.0}, "publication_date: expected a date, got double"),
        ({"text": ["a"]}, "text: expected a string, got array"),
        ({"attachments": 5}, "attachments: expected a list of VK attachment ids or a comma "
                             "string, got int"),
        ({"vk_post_id": 1.5}, "vk_post_id: expected an integer, got double"),
        ({"claimed_at": "now"}, "claimed_at: expected a date, got string"),
    ])
    def test_unusable_fields_are_named_with_their_type(self, fields: dict[str, Any],
                                                       reason: str) -> None:
        with pytest.raises(DocumentError) as raised:
            SystemPost.from_document(post(**fields))
        assert str(raised.value) == reason

    @pytest.mark.parametrize("field", ["project_id", "publication_date", "status", "_id"])
    def test_missing_required_fields(self, field: str) -> None:
        document = post()
        del document[field]
        with pytest.raises(DocumentError, match=f"^{field}: missing$"):
            SystemPost.from_document(document)


class TestBsonTypes:
    @pytest.mark.parametrize(("value", "name"), [
        (None, "null"), (True, "bool"), (1, "int"), (Int64(1), "long"), (1.0, "double"),
        ("s", "string"), (WHEN, "date"), (OID, "objectId"), (b"x", "binData"),
        ([1], "array"), ({"a": 1}, "object"), (Decimal128("1"), "decimal"),
    ])
    def test_names_as_mongodb_shows_them(self, value: Any, name: str) -> None:
        assert bson_type(value) == name

    @pytest.mark.parametrize(("value", "usable"), [
        ("p", True), (OID, True), (5, True), (5.0, True), (b"\x01", True),
        (None, False), (True, False), (5.5, False), ([1], False), ({}, False),
    ])
    def test_usable_ids(self, value: Any, usable: bool) -> None:
        assert is_usable_id(value) is usable

    @pytest.mark.parametrize("value", ["p1", "42", OID, 42, -7, b"\x01\xff", "abc"])
    def test_an_id_is_found_again_by_its_label(self, value: Any) -> None:
        """What a message carries (the label) leads back to the id as stored."""
        assert value in ids_labelled(id_label(value))

    @pytest.mark.parametrize(("label", "others"), [
        ("p1", []), ("042", []), ("-7", [-7]), ("abcd", [b"\xab\xcd"]),
    ])
    def test_only_ids_with_that_exact_label(self, label: str, others: list[Any]) -> None:
        """No near miss: ``042`` is not the int 42 (whose label is ``42``)."""
        assert ids_labelled(label) == [label, *others]
