"""Finding system posts on a wall: by id (way 1) or by content (way 2). Pure functions.

Only a published post of the community counts (:func:`published_on_wall`): ``post_type``
``post`` or ``copy`` (not a suggestion, not a postponed post), not deleted, on the
community's own wall (``owner_id`` = −group id).

Way 1: the post's ``vk_post_id`` is known (``wall.post`` answered) and such a wall post
has it.

Way 2: the id is unknown (the ``wall.post`` outcome was unknown, or the tracker died
before storing the id). A wall post matches when its **normalised text** equals that of
the text the tracker sent and its **set of images** equals the system post's. To keep
a match from being a look-alike published earlier, the wall post must not be older
than the claim (less a small clock slack), must not be the known id of another system
post, and may verify at most one system post: system posts take candidates oldest
claim first, each the oldest fitting wall post.

Normalisation (:func:`normalise_text`) undoes what VK does to a text it stores: HTML
entities and ``<br>``, mentions typed as ``@screen_name (Name)`` or ``*id1 (Name)``
stored as ``[id1|Name]`` (compared by the visible name), zero-width characters and
emoji variation selectors dropped; then NFKC, casefold, whitespace collapsed.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from shared.vk import WallPost

# VK mention markup: ``[id1|Name]``, ``[club1|Name]`` (also public/event), shown as "Name".
_MENTION = re.compile(r"\[(?:id|club|public|event)\d+\|([^\]]*)\]")
# The forms users type, which VK turns into the markup above: ``@durov (Pavel)``,
# ``@id1 (Name)``, ``*club1 (Name)``.
_AT_MENTION = re.compile(r"[@*][A-Za-z0-9_.]+\s*\(([^)]*)\)")
_LINE_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)
# Zero-width space/joiners, word joiner, BOM; variation selectors (U+FE0F after emoji).
_INVISIBLE = re.compile("[\u200b-\u200d\u2060\ufeff\ufe00-\ufe0f\U000e0100-\U000e01ef]")
_WHITESPACE = re.compile(r"\s+")
# Wall post types that are published posts (not "suggest", "postpone", "reply").
PUBLISHED_TYPES = frozenset({"post", "copy"})
# ``photo{owner_id}_{id}`` with an optional access key, which is not part of the identity.
_PHOTO = re.compile(r"^photo(-?\d+)_(\d+)(?:_[0-9A-Za-z]+)?$")

DEFAULT_DATE_SLACK = timedelta(seconds=5)


class Way(StrEnum):
    """How a system post was found on the wall (the ``way`` label of the metric)."""

    ID = "id"  # way 1
    CONTENT = "content"  # way 2


def normalise_text(text: str) -> str:
    """The text as compared (see the module docstring)."""
    text = html.unescape(_LINE_BREAK.sub("\n", text))
    text = _MENTION.sub(lambda match: match.group(1), text)
    text = _AT_MENTION.sub(lambda match: match.group(1), text)
    text = unicodedata.normalize("NFKC", _INVISIBLE.sub("", text))
    return _WHITESPACE.sub(" ", text.casefold()).strip()


def published_on_wall(wall_post: WallPost, owner_id: int) -> bool:
    """A published post on the wall ``owner_id`` (not a suggestion, postponed, deleted)."""
    return (wall_post.owner_id == owner_id and wall_post.post_type in PUBLISHED_TYPES
            and not wall_post.is_deleted)


def image_set(attachments: Iterable[str]) -> frozenset[str]:
    """The photos among attachment ids, as ``photo{owner_id}_{id}`` (access keys dropped)."""
    images: set[str] = set()
    for attachment in attachments:
        match = _PHOTO.match(attachment.strip())
        if match is not None:
            images.add(f"photo{match[1]}_{match[2]}")
    return frozenset(images)


@dataclass(frozen=True, slots=True)
class Unverified:
    """A ``publishing`` system post, as verification sees it."""

    key: str
    vk_post_id: int | None
    text: str  # the text that was sent
    attachments: tuple[str, ...]
    since: datetime  # when it was handed to VK


@dataclass(frozen=True, slots=True)
class Match:
    key: str
    wall_post_id: int
    way: Way


def match_posts(posts: Sequence[Unverified], wall: Iterable[WallPost], *, owner_id: int,
                reserved_ids: Collection[int] = (),
                date_slack: timedelta = DEFAULT_DATE_SLACK) -> dict[str, Match]:
    """Which of ``posts`` are on the wall ``owner_id`` (key → match); the others are not
    (yet) there. ``wall`` is what was read of it.

    ``reserved_ids`` are wall post ids known to belong to other system posts of the
    project; they never verify a post by content.
    """
    wall_posts = {post.id: post for post in wall if published_on_wall(post, owner_id)}
    matches: dict[str, Match] = {}
    taken: set[int] = set(reserved_ids)
    for post in posts:
        if post.vk_post_id is None:
            continue
        taken.add(post.vk_post_id)
        if post.vk_post_id in wall_posts:
            matches[post.key] = Match(post.key, post.vk_post_id, Way.ID)

    by_content = sorted((post for post in posts if post.vk_post_id is None),
                        key=lambda post: (post.since, post.key))
    if not by_content:
        return matches
    candidates = sorted(wall_posts.values(), key=lambda wall_post: (wall_post.date, wall_post.id))
    fingerprints = {wall_post.id: (normalise_text(wall_post.text), image_set(wall_post.attachments))
                    for wall_post in candidates}
    for post in by_content:
        wanted = (normalise_text(post.text), image_set(post.attachments))
        earliest = post.since - date_slack
        for wall_post in candidates:
            if (wall_post.id not in taken and wall_post.date >= earliest
                    and fingerprints[wall_post.id] == wanted):
                taken.add(wall_post.id)
                matches[post.key] = Match(post.key, wall_post.id, Way.CONTENT)
                break
    return matches
