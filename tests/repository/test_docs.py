"""The README is the front door (at most 12 KB) and no link in the documentation is broken.

Every relative link of every tracked Markdown file must name a file of the repository
and, with a ``#fragment`` into a Markdown file, one of its headings (GitHub's anchors).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.repository.test_self_contained import REPOSITORY, tracked_files

README_LIMIT_BYTES = 12 * 1024
LINK = re.compile(r"\[[^\]]*\]\((?P<target>[^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCED_CODE = re.compile(r"^```.*?^```", flags=re.DOTALL | re.MULTILINE)
INLINE_CODE = re.compile(r"`[^`\n]*`")
HEADING = re.compile(r"^#{1,6}\s+(?P<title>.+?)\s*$", flags=re.MULTILINE)


def anchor(title: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    """The anchors of a document's headings; a repeated one gets ``-1``, ``-2``… as on GitHub."""
    found: set[str] = set()
    for match in HEADING.finditer(FENCED_CODE.sub("", markdown)):
        base = anchor(match["title"])
        name, count = base, 0
        while name in found:
            count += 1
            name = f"{base}-{count}"
        found.add(name)
    return found


def links(markdown: str) -> list[str]:
    """Link targets outside code (fenced blocks and inline spans)."""
    prose = INLINE_CODE.sub("", FENCED_CODE.sub("", markdown))
    return [match["target"] for match in LINK.finditer(prose)]


def broken_links(document: Path, root: Path) -> list[str]:
    """The relative links of ``document`` that name no file under ``root``, or no heading."""
    broken: list[str] = []
    for target in links(document.read_text(encoding="utf-8")):
        if re.match(r"[a-z][a-z+.-]*:", target):  # https:, mailto:
            continue
        file_part, _, fragment = target.partition("#")
        path = (document.parent / file_part).resolve() if file_part else document
        if not path.is_relative_to(root) or not path.exists():
            broken.append(f"{document.name}: [link]({target}): no such file")
        elif fragment and path.suffix == ".md" and fragment not in anchors(
                path.read_text(encoding="utf-8")):
            broken.append(f"{document.name}: [link]({target}): no such heading")
    return broken


class TestAnchors:
    @pytest.mark.parametrize(("title", "expected"), [
        ("Configuration", "configuration"),
        ("Frontend API (update_notifier, port 8081)", "frontend-api-update_notifier-port-8081"),
        ("The refresher's external metric", "the-refreshers-external-metric"),
        ("Broker or MongoDB outage", "broker-or-mongodb-outage"),
    ])
    def test_anchor_of_a_heading(self, title: str, expected: str) -> None:
        """Headings become GitHub's anchors."""
        assert anchor(title) == expected

    def test_repeated_headings_are_numbered(self) -> None:
        """A second heading of the same title is ``-1``; headings in code blocks do not count."""
        assert anchors("# A\n## A\n```sh\n# B\n```\n") == {"a", "a-1"}


class TestBrokenLinks:
    def test_bad_files_and_headings_are_found(self, tmp_path: Path) -> None:
        """A missing file, a missing heading and a path out of the tree are reported;
        good links, URLs and links inside code are not."""
        (tmp_path / "docs").mkdir()
        (tmp_path / "docs" / "other.md").write_text("# Other\n## Part two\n")
        document = tmp_path / "docs" / "index.md"
        document.write_text(
            "# Index\n[ok](other.md#part-two) [self](#index) [web](https://example.com/x.md)\n"
            "[gone](missing.md) [no part](other.md#part-three) [out](../../elsewhere.md)\n"
            "`[code](nowhere.md)`\n```\n[block](nowhere.md)\n```\n")
        assert broken_links(document, tmp_path) == [
            "index.md: [link](missing.md): no such file",
            "index.md: [link](other.md#part-three): no such heading",
            "index.md: [link](../../elsewhere.md): no such file",
        ]


class TestDocumentation:
    def test_readme_is_at_most_12_kb(self) -> None:
        """The README stays a front door; long-form text belongs in docs/."""
        size = len((REPOSITORY / "README.md").read_bytes())
        assert size <= README_LIMIT_BYTES, f"README.md is {size} bytes"

    def test_readme_links_the_documents(self) -> None:
        """The moved sections live in docs/ and the README links each of them."""
        targets = set(links((REPOSITORY / "README.md").read_text(encoding="utf-8")))
        for name in ("operations", "reliability", "performance"):
            assert f"docs/{name}.md" in targets

    @pytest.mark.integration  # runs a process
    def test_no_link_is_broken(self) -> None:
        """Every relative link of every tracked Markdown file resolves, anchors included."""
        documents = [REPOSITORY / name for name in tracked_files() if name.endswith(".md")]
        assert REPOSITORY / "README.md" in documents
        broken = [entry for document in documents for entry in broken_links(document, REPOSITORY)]
        assert broken == []
