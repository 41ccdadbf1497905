"""Post attachments: VK's ``photo-1_2`` references and the photo objects they stand for."""

from __future__ import annotations

import re
from typing import Any

from .errors import invalid_param

# VK's attachment reference: type, owner id, object id and an optional access key.
_PHOTO_REFERENCE = re.compile(r"^photo(-?\d+)_(\d+)(?:_([0-9A-Za-z]+))?$")
# Photos a community posts live in its "wall photos" album, which VK numbers -7.
WALL_PHOTOS_ALBUM_ID = -7
# VK reports photos uploaded on behalf of a community as uploaded by user 100.
COMMUNITY_UPLOADER_ID = 100


def parse_attachments(value: str | list[str] | None) -> list[str]:
    """Normalised references from ``"photo-1_2,photo-1_3"`` or a list; error 100 if bad."""
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    references = [item.strip() for item in items if item.strip()]
    for reference in references:
        if not _PHOTO_REFERENCE.match(reference):
            raise invalid_param("attachments", f"is invalid: {reference!r} (only photos are supported)")
    return references


def attachment_object(reference: str, date: int) -> dict[str, Any]:
    """The ``wall_wallpost_attachment`` for a validated reference."""
    match = _PHOTO_REFERENCE.match(reference)
    if match is None:  # parse_attachments let only photos in
        raise ValueError(f"not a photo reference: {reference}")
    owner_id, photo_id, access_key = int(match[1]), int(match[2]), match[3]
    url_stem = f"https://sun9-1.userapi.com/sandbox/photo{owner_id}_{photo_id}"
    photo: dict[str, Any] = {
        "id": photo_id,
        "album_id": WALL_PHOTOS_ALBUM_ID,
        "owner_id": owner_id,
        "user_id": COMMUNITY_UPLOADER_ID if owner_id < 0 else owner_id,
        "date": date,
        "text": "",
        "has_tags": False,
        "sizes": [
            {"type": "s", "width": 75, "height": 50, "url": f"{url_stem}_s.jpg"},
            {"type": "m", "width": 130, "height": 87, "url": f"{url_stem}_m.jpg"},
            {"type": "x", "width": 604, "height": 403, "url": f"{url_stem}_x.jpg"},
        ],
    }
    if access_key:
        photo["access_key"] = access_key
    return {"type": "photo", "photo": photo}
