from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.post_tracker.matching import (
    Match,
    Unverified,
    Way,
    image_set,
    match_posts,
    normalise_text,
    published_on_wall,
)
from services.post_tracker.verifier import reached
from shared.vk import WallPost

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


def wall_post(post_id: int, text: str, *, at: datetime = T0, photos: tuple[str, ...] = ()
              ) -> WallPost:
    """A wall post as ``wall.get`` returns it (photos as VK attachment objects)."""
    attachments = []
    for photo in photos:
        owner_id, object_id = photo.removeprefix("photo").split("_")
        attachments.append({"type": "photo",
                            "photo": {"owner_id": int(owner_id), "id": int(object_id)}})
    return WallPost.model_validate({"id": post_id, "owner_id": -1, "from_id": -1,
                                    "date": int(at.timestamp()), "text": text,
                                    "attachments": attachments})


def match_on_wall(posts: list[Unverified], wall: list[WallPost],
                  **options: Any) -> dict[str, Match]:
    """:func:`match_posts` on the wall of community 1."""
    return match_posts(posts, wall, owner_id=-1, **options)


def unverified(key: str, text: str = "", *, vk_post_id: int | None = None,
               photos: tuple[str, ...] = (), since: datetime = T0) -> Unverified:
    return Unverified(key, vk_post_id, text, photos, since)


class TestNormaliseText:
    def test_case_and_whitespace(self) -> None:
        """Casefolded, whitespace runs (newlines, tabs, NBSP) become one space, trimmed."""
        assert normalise_text("  Hello\n\n\tWORLD\u00a0 straße ") == "hello world strasse"

    def test_nfkc(self) -> None:
        """Compatibility forms (full-width letters, ligatures) compare equal to plain ones."""
        assert normalise_text("ＶＫ ﬁle") == normalise_text("VK file")

    def test_mentions_compare_by_visible_name(self) -> None:
        """``[id1|Name]``, ``[club1|Name]`` and ``@id1 (Name)`` all read as "Name"."""
        assert normalise_text("Hi [id1|Ann] and [club22|Club]!") == "hi ann and club!"
        assert normalise_text("Hi @id1 (Ann)") == normalise_text("Hi [id1|Ann]")

    def test_other_brackets_are_kept(self) -> None:
        """Brackets that are not mention markup are ordinary text."""
        assert normalise_text("[note|x] [id|y]") == "[note|x] [id|y]"


class TestWhatVkDoesToText:
    """Texts as sent and as VK's wall.get returns them (observed on VK)."""

    @pytest.mark.parametrize(("sent", "on_the_wall"), [
        ("Hi @durov (Pavel)!", "Hi [id1|Pavel]!"),
        ("Ask *club1 (Support)", "Ask [club1|Support]"),
        ("Tom & Jerry <3 \"quotes\"", "Tom &amp; Jerry &lt;3 &quot;quotes&quot;"),
        ("line one\nline two", "line one<br>line two"),
        ("I \u2764\ufe0f VK", "I \u2764 VK"),
        ("zero\u200bwidth\u200d join\ufeff", "zerowidth join"),
        ("Ｆｕｌｌ width", "Full width"),
        ("  Many   spaces\t", "Many spaces"),
    ], ids=["at-mention", "star-mention", "entities", "br", "variation-selector",
            "zero-width", "nfkc", "whitespace"])
    def test_sent_and_stored_compare_equal(self, sent: str, on_the_wall: str) -> None:
        """The text VK shows normalises to the text the tracker sent."""
        assert normalise_text(sent) == normalise_text(on_the_wall)

    def test_different_words_stay_different(self) -> None:
        """Normalisation does not make different texts equal."""
        assert normalise_text("Sale at 10:00") != normalise_text("Sale at 11:00")


class TestPublishedOnWall:
    @pytest.mark.parametrize(("fields", "accepted"), [
        ({}, True),
        ({"post_type": "copy"}, True),
        ({"post_type": "suggest"}, False),
        ({"post_type": "postpone"}, False),
        ({"is_deleted": True}, False),
        ({"owner_id": -2}, False),
    ], ids=["post", "copy", "suggestion", "postponed", "deleted", "other-wall"])
    def test_only_published_posts_of_the_community_count(self, fields: dict[str, Any],
                                                         accepted: bool) -> None:
        """Way 1 and way 2 accept only a published post of the community's own wall."""
        raw = {"id": 7, "owner_id": -1, "from_id": -1, "date": int(T0.timestamp()),
               "text": "same", **fields}
        post = WallPost.model_validate(raw)
        assert published_on_wall(post, -1) is accepted
        by_id = match_on_wall([unverified("a", "x", vk_post_id=7)], [post])
        by_content = match_on_wall([unverified("b", "same")], [post])
        assert (by_id != {}, by_content != {}) == (accepted, accepted)


class TestImageSet:
    def test_photos_only_without_access_keys(self) -> None:
        """Photos by owner and id; access keys, other kinds and junk are ignored."""
        assert image_set(["photo-1_2", "photo-1_2_abc", " photo5_6 ", "video-1_3", "x"]) == {
            "photo-1_2", "photo5_6"}

    def test_order_does_not_matter(self) -> None:
        """It is a set."""
        assert image_set(["photo1_1", "photo1_2"]) == image_set(["photo1_2", "photo1_1"])


class TestWayOne:
    def test_found_by_id(self) -> None:
        """A post whose vk_post_id is on the wall is matched by id, whatever its text."""
        matches = match_on_wall([unverified("a", "whatever", vk_post_id=7)],
                              [wall_post(7, "edited on VK")])
        assert matches == {"a": Match("a", 7, Way.ID)}

    def test_missing_id_is_not_matched_by_content(self) -> None:
        """With a known id, a look-alike with another id does not count."""
        assert match_on_wall([unverified("a", "same", vk_post_id=7)], [wall_post(8, "same")]) == {}


class TestWayTwo:
    def test_found_by_text_and_images(self) -> None:
        """Without an id, equal normalised text and equal photo sets match."""
        matches = match_on_wall(
            [unverified("a", "Hello  [id1|Ann]", photos=("photo-1_2", "photo-1_3_key"))],
            [wall_post(9, "hello ann", photos=("photo-1_3", "photo-1_2"))])
        assert matches == {"a": Match("a", 9, Way.CONTENT)}

    def test_text_alone_is_not_enough(self) -> None:
        """Different photos → no match."""
        assert match_on_wall([unverified("a", "x", photos=("photo-1_2",))],
                           [wall_post(9, "x", photos=("photo-1_3",))]) == {}

    def test_images_alone_are_not_enough(self) -> None:
        """Different text → no match."""
        assert match_on_wall([unverified("a", "x", photos=("photo-1_2",))],
                           [wall_post(9, "y", photos=("photo-1_2",))]) == {}

    def test_one_wall_post_verifies_at_most_one_system_post(self) -> None:
        """Two identical system posts need two wall posts; the older claim takes the older."""
        posts = [unverified("late", "same", since=T0 + timedelta(seconds=5)),
                 unverified("early", "same", since=T0)]
        one = match_on_wall(posts, [wall_post(3, "same", at=T0)])
        assert one == {"early": Match("early", 3, Way.CONTENT)}
        two = match_on_wall(posts, [wall_post(4, "same", at=T0 + timedelta(seconds=6)),
                                  wall_post(3, "same", at=T0)])
        assert two == {"early": Match("early", 3, Way.CONTENT),
                       "late": Match("late", 4, Way.CONTENT)}

    def test_wall_post_known_by_id_is_not_reused(self) -> None:
        """A wall post that is another system post's vk_post_id never verifies by content."""
        posts = [unverified("known", "same", vk_post_id=3), unverified("unknown", "same")]
        assert match_on_wall(posts, [wall_post(3, "same")]) == {"known": Match("known", 3, Way.ID)}
        assert match_on_wall([unverified("unknown", "same")], [wall_post(3, "same")],
                           reserved_ids={3}) == {}

    def test_wall_post_older_than_the_claim_does_not_match(self) -> None:
        """A look-alike published before the post was handed to VK (beyond the slack) is not it."""
        post = unverified("a", "same", since=T0)
        old = wall_post(3, "same", at=T0 - timedelta(seconds=60))
        assert match_on_wall([post], [old]) == {}
        slightly_early = wall_post(4, "same", at=T0 - timedelta(seconds=1))  # clock skew
        assert match_on_wall([post], [slightly_early]) == {"a": Match("a", 4, Way.CONTENT)}


class TestReadingBack:
    def test_a_page_reaches_the_claim_only_with_an_older_unpinned_post(self) -> None:
        """Paging stops at a page holding a post older than the claim; a pinned old post
        (shown first whatever its date) does not stop it."""
        claim = T0
        newer = wall_post(3, "newer", at=T0 + timedelta(seconds=5))
        older = wall_post(2, "older", at=T0 - timedelta(minutes=5))
        pinned = WallPost.model_validate({**older.raw, "id": 1, "is_pinned": 1})
        assert not reached([pinned, newer], claim)
        assert reached([newer, older], claim)
        assert not reached([], claim)
