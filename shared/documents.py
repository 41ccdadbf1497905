"""The one tolerant reader of each collection written by others: ``projects``, ``system_posts``.

Those documents come from other parts of the product, from a shell by hand, and from
older code, so every service reads them through these models and nowhere else:

* integers stored as integral doubles (``123456.0``, what a JSON pipeline or the legacy
  shell writes) or as int64 are ints; ``123.5``, strings and booleans are not;
* ids (``_id``, ``project_id``) are kept as the BSON value they are (string, ObjectId,
  int, binary) and queried as such, never compared as strings with another type;
* ``attachments`` is a list of VK ids or VK's own comma string (``"photo-1_2,photo-1_3"``);
* datetimes without a time zone are read as UTC (BSON dates are UTC; a naive value only
  comes from a client that dropped the zone).

A document that still cannot be used raises :class:`DocumentError`, whose message names
the field and the type of the value found (never the value: it may be a token).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Self

from bson import Decimal128, Int64, ObjectId
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
)

from shared.mongo import Document

# The BSON types an id may have, read as they are.
BsonId = str | int | ObjectId | bytes


class DocumentError(ValueError):
    """A document that cannot be used; the message names the field and the value's type."""


class PostStatus(StrEnum):
    """``system_posts.status`` of the data contract."""

    PENDING = "pending_publication"
    PUBLISHING = "publishing"
    ERROR = "error"
    POSSIBLE_ERROR = "possible_error"


OTHER_STATUS = "other"


def count_by_status(groups: Iterable[tuple[Any, int]]) -> dict[str, int]:
    """Posts per status from ``(status value, count)`` groups: every known status (0 when
    there is none), and ``other`` for values written by others that are none of them."""
    known = [status.value for status in PostStatus]
    counts = dict.fromkeys([*known, OTHER_STATUS], 0)
    for value, count in groups:
        counts[value if isinstance(value, str) and value in known else OTHER_STATUS] += count
    return counts


def bson_type(value: Any) -> str:
    """MongoDB's name of the value's type, as a user inspecting the document sees it."""
    match value:
        case None:
            return "null"
        case bool():
            return "bool"
        case Int64():
            return "long"
        case int():
            return "int"
        case float():
            return "double"
        case str():
            return "string"
        case datetime():
            return "date"
        case ObjectId():
            return "objectId"
        case bytes():
            return "binData"
        case list() | tuple():
            return "array"
        case dict():
            return "object"
        case Decimal128():
            return "decimal"
    return type(value).__name__


def _integer(value: Any) -> Any:
    """An int, an int64, or an integral double/decimal as an int; anything else is refused."""
    if isinstance(value, bool):
        raise ValueError("expected an integer")
    if isinstance(value, int):
        return int(value)
    if isinstance(value, Decimal128):
        value = float(value.to_decimal())
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise ValueError("expected an integer")


def as_integer(value: Any) -> int | None:
    """``value`` as an int if it holds a whole number (int, int64, integral double)."""
    try:
        integer: int = _integer(value)
    except ValueError:
        return None
    return integer


def _bson_id(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        raise ValueError("expected an id")
    if isinstance(value, float | Decimal128):
        if (integer := as_integer(value)) is None:
            raise ValueError("expected an id")
        return integer
    if isinstance(value, str | int | ObjectId | bytes):
        return value
    raise ValueError("expected an id")


def id_label(value: Any) -> str:
    """An id as it appears in logs and messages (binary ids in hex)."""
    return value.hex() if isinstance(value, bytes) else str(value)


def ids_labelled(label: str) -> list[Any]:
    """Every id whose :func:`id_label` is ``label``: messages carry ids as labels, so a
    project whose ``_id`` is an ObjectId, an int or binary is found again by its label."""
    ids: list[Any] = [label]
    if ObjectId.is_valid(label):
        ids.append(ObjectId(label))
    if label.lstrip("-").isdigit() and str(int(label)) == label:
        ids.append(int(label))
    if label and len(label) % 2 == 0:
        with contextlib.suppress(ValueError):  # not hex
            ids.append(bytes.fromhex(label))
    return ids


def is_usable_id(value: Any) -> bool:
    """Whether ``value`` can be an id (of a project, a post) as the models read ids."""
    try:
        _bson_id(value)
    except ValueError:
        return False
    return True


def _utc(value: Any) -> Any:
    if not isinstance(value, datetime):
        raise ValueError("expected a date")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _optional(check: Any) -> Any:
    def validate(value: Any) -> Any:
        return None if value is None else check(value)
    return validate


def _text(value: Any) -> Any:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError("expected a string")
    return value


def _optional_text(value: Any) -> Any:
    if value is not None and not isinstance(value, str):
        raise ValueError("expected a string")
    return value


def _count(value: Any) -> Any:
    return 0 if value is None else _integer(value)


def _flag(value: Any) -> Any:
    return bool(value)


def _attachments(value: Any) -> Any:
    """VK attachment ids from a list, or from VK's comma string; empty parts dropped."""
    if value is None:
        return ()
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list | tuple):
        raise ValueError("expected a list of VK attachment ids or a comma string")
    items: list[str] = []
    for item in value:
        if not isinstance(item, str):
            raise ValueError(f"expected VK attachment ids (strings), found {bson_type(item)} "
                             "in the list")
        if item.strip():
            items.append(item.strip())
    return tuple(items)


Integer = Annotated[int, BeforeValidator(_integer)]
OptionalInteger = Annotated[int | None, BeforeValidator(_optional(_integer))]
Id = Annotated[BsonId, BeforeValidator(_bson_id)]
UtcDatetime = Annotated[datetime, BeforeValidator(_utc)]
OptionalUtcDatetime = Annotated[datetime | None, BeforeValidator(_optional(_utc))]
Text = Annotated[str, BeforeValidator(_text)]
OptionalText = Annotated[str | None, BeforeValidator(_optional_text)]
Attachments = Annotated[tuple[str, ...], BeforeValidator(_attachments)]
Count = Annotated[int, BeforeValidator(_count)]


def _reason(error: ValidationError, document: Document) -> str:
    """``field: what was expected, got <type>`` for the first problem; never the value."""
    first = error.errors(include_url=False, include_input=False)[0]
    field = ".".join(str(part) for part in first["loc"]) or "document"
    alias = "_id" if field == "id" else field
    expected = first["msg"].removeprefix("Value error, ")
    if first["type"] == "missing" or alias not in document:
        return f"{alias}: missing"
    return f"{alias}: {expected}, got {bson_type(document[alias])}"


class _Tolerant(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True,
                              hide_input_in_errors=True, arbitrary_types_allowed=True)

    @classmethod
    def from_document(cls, document: Document) -> Self:
        """The model of ``document``; :class:`DocumentError` naming the field if unusable."""
        try:
            return cls.model_validate(document)
        except ValidationError as error:
            raise DocumentError(_reason(error, document)) from None


class Project(_Tolerant):
    """A ``projects`` document. Its repr never shows the token or the callback secret."""

    id: Id = Field(alias="_id")
    name: OptionalText = None
    vk_group_id: OptionalInteger = None
    vk_confirmation_code: OptionalText = None
    vk_callback_secret: OptionalText = Field(default=None, repr=False)
    vk_user_token: OptionalText = Field(default=None, repr=False)

    @property
    def label(self) -> str:
        """The id as it appears in logs and messages."""
        return id_label(self.id)

    @property
    def group_id(self) -> int:
        """The community id (0 when missing or not positive: see :attr:`problem`)."""
        return self.vk_group_id if self.vk_group_id is not None and self.vk_group_id > 0 else 0

    @property
    def token(self) -> str:
        return self.vk_user_token or ""

    @property
    def problem(self) -> str | None:
        """Why nothing can be read from or posted to the project's wall, if so."""
        if self.vk_group_id is None:
            return "vk_group_id: missing"
        if self.vk_group_id <= 0:
            return "vk_group_id: expected a positive integer"
        if not self.vk_user_token:
            return "vk_user_token: missing"
        return None


class SystemPost(_Tolerant):
    """A ``system_posts`` document: the contract's fields and the tracker's bookkeeping."""

    id: Id = Field(alias="_id")
    project_id: Id
    text: Text = ""
    attachments: Attachments = ()
    publication_date: UtcDatetime
    status: str
    vk_post_id: OptionalInteger = None
    # The post tracker's bookkeeping (services/post_tracker), absent until it touches the post.
    claimed_by: OptionalText = None
    claimed_at: OptionalUtcDatetime = None
    sent_text: OptionalText = None
    guid: OptionalText = None
    correlation_id: OptionalText = None
    attempts: Count = 0
    refusals: Count = 0
    resends: Count = 0
    outcome_unknown: Annotated[bool, BeforeValidator(_flag)] = False
    wall_read_at: OptionalUtcDatetime = None
    # ``text`` exactly as stored (missing, null, a string), for the claim's check.
    stored_text: Any = Field(default=None, repr=False, exclude=True)

    @classmethod
    def from_document(cls, document: Document) -> Self:
        post = super().from_document(document)
        return post.model_copy(update={"stored_text": document.get("text")})

    @property
    def key(self) -> str:
        """The id as it appears in logs."""
        return id_label(self.id)

    @property
    def project_label(self) -> str:
        """The project id as it appears in logs and messages."""
        return id_label(self.project_id)

    @property
    def published_since(self) -> datetime:
        """When it was first handed to VK (its claim), else its planned date."""
        return self.claimed_at or self.publication_date
