"""Finding system posts on a wall: by id (way 1) or by content (way 2). Pure functions.

Way 1: the post's ``vk_post_id`` is known (``wall.post`` answered) and a wall post has it.

Way 2: the id is unknown (the ``wall.post`` outcome was unknown, or the tracker died
before storing the id). A wall post matches when its **normalised text** equals that of
the text the tracker sent and its **set of images** equals the system post's. To keep
a match from being a look-alike published earlier, the wall post must not be older
than the claim (less a small clock slack), must not be the known id of another system
post, and may verify at most one system post: system posts take candidates oldest
claim first, each the oldest fitting wall post.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from shared.vk import WallPost

# VK mention markup: ``[id1|Name]``, ``[club1|Name]`` (also public/event), shown as "Name".
_MENTION = re.compile(r"\[(?:id|club|public|event)\d+\|([^\]]*)\]")
# The form users type, which VK turns into the markup above: ``@id1 (Name)``.
_AT_MENTION = re.compile(r"@(?:id|club|public|event)\d+\s*\(([^)]*)\)")
_WHITESPACE = re.compile(r"\s+")
# ``photo{owner_id}_{id}`` with an optional access key, which is not part of the identity.
_PHOTO = re.compile(r"^photo(-?\d+)_(\d+)(?:_[0-9A-Za-z]+)?$")

DEFAULT_DATE_SLACK = timedelta(seconds=5)


class Way(StrEnum):
    """How a system post was found on the wall (the ``way`` label of the metric)."""

    ID = "id"  # way 1
    CONTENT = "content"  # way 2


def normalise_text(text: str) -> str:
    """The text as compared: NFKC, mentions by visible name, casefolded, spaces collapsed."""
    text = unicodedata.normalize("NFKC", text)
    text = _MENTION.sub(lambda match: match.group(1), text)
    text = _AT_MENTION.sub(lambda match: match.group(1), text)
    return _WHITESPACE.sub(" ", text.casefold()).strip()


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


def match_posts(posts: Sequence[Unverified], wall: Iterable[WallPost], *,
                reserved_ids: Collection[int] = (),
                date_slack: timedelta = DEFAULT_DATE_SLACK) -> dict[str, Match]:
    """Which of ``posts`` are on ``wall`` (key → match); the others are not (yet) there.

    ``reserved_ids`` are wall post ids known to belong to other system posts of the
    project; they never verify a post by content.
    """
    wall_posts = {post.id: post for post in wall}
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
