"""The repository is self-contained: no tracked file refers to a path outside its tree.

A fresh clone in any folder must work, so nothing may point at siblings of the checkout
(``../sibling/...``), at this machine's folders (``/work/...``, a home directory) or at the
checkout's own absolute location. :func:`outside_references` finds such references in one
file's text; the scan runs it over every file ``git ls-files`` lists.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path, PurePosixPath

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]

# Folders of a developer's machine; a container's paths (/app, /opt/venv) are fine.
MACHINE_PATH = re.compile(r"(?<![\w.~-])/(?:work|home|Users|mnt)/[\w.-]+")
# References relative to the document holding them: Markdown links, JSON $ref / $schema.
DOCUMENT_RELATIVE = re.compile(r"\]\((?P<target>[^)\s#]+)|\"\$(?:ref|schema)\":\s*\"(?P<ref>[^\"#]+)")
# Any other relative path that climbs (../x): from the file's folder or from the root.
CLIMBING_PATH = re.compile(r"(?<![\w.])(?:\.\./)+[\w.-]*")
# Python's ways of climbing: Path(...) / "..", Path(".."), Path(__file__).parents[n].
PARENT_JOIN = re.compile(r"/\s*[\"']\.\.[\"']|[\"']\.\.[\"']\s*/|Path\(\s*[\"']\.\.[\"']")
FILE_PARENTS = re.compile(r"__file__.*\.parents\[(\d+)\]")
# This module: its examples are what it looks for.
SCANNER = PurePosixPath(Path(__file__).resolve().relative_to(REPOSITORY).as_posix())


def leaves_root(folder: PurePosixPath, target: str) -> bool:
    """Whether ``target``, relative to ``folder`` (a folder inside the root), climbs out."""
    depth = len(folder.parts)
    for part in PurePosixPath(target).parts:
        if part == "..":
            depth -= 1
            if depth < 0:
                return True
        elif part != ".":
            depth += 1
    return False


def outside_references(path: str, text: str, checkout: str = "") -> list[str]:
    """The references in ``text`` (of the file ``path``, relative to the root) to paths
    outside the root; ``checkout``, the root's absolute location, is one of them."""
    here = PurePosixPath(path)
    folder = here.parent if here.parent != PurePosixPath(".") else PurePosixPath()
    found: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if "/" not in line and ".." not in line and "parents[" not in line:
            continue  # nothing below can match (keeps the scan of ~1 MB short)
        spans: list[tuple[int, int]] = []
        for match in DOCUMENT_RELATIVE.finditer(line):
            group = "target" if match["target"] else "ref"
            spans.append(match.span(group))
            if "://" not in match[group] and leaves_root(folder, match[group]):
                found.append(f"{path}:{number}: {match[group]}")
        found.extend(
            f"{path}:{number}: {match[0]}" for match in CLIMBING_PATH.finditer(line)
            if not any(start <= match.start() < end for start, end in spans)
            and (leaves_root(folder, match[0]) or (
                # In JSON, paths are relative to the document (as $ref); elsewhere they
                # may be relative to the working directory, i.e. the root.
                here.suffix != ".json" and leaves_root(PurePosixPath(), match[0]))))
        found.extend(f"{path}:{number}: {match[0]}" for pattern in (MACHINE_PATH, PARENT_JOIN)
                     for match in pattern.finditer(line))
        found.extend(f"{path}:{number}: parents[{match[1]}]" for match in FILE_PARENTS.finditer(line)
                     if int(match[1]) >= len(here.parts))
        if checkout and checkout in line:
            found.append(f"{path}:{number}: {checkout}")
    return found


def tracked_files() -> list[str]:
    """The files of the repository as git knows them (what a clone has)."""
    listing = subprocess.run(["git", "ls-files", "-z"], cwd=REPOSITORY, check=True,
                             capture_output=True, text=True).stdout
    return [name for name in listing.split("\0") if name]


class TestOutsideReferences:
    @pytest.mark.parametrize(("path", "text"), [
        ("tools/vk_sandbox/schema.py", 'Path(__file__).parents[2] / ".." / "shared"'),
        ("tools/vk_sandbox/schema.py", "root = Path(__file__).resolve().parents[3]"),
        ("tools/x.py", 'SCHEMA = Path("..") / "shared"'),
        ("Makefile", "VK_API_SCHEMA_DIR ?= ../sibling/vk-api-schema"),
        ("deploy/README.md", "see [the schema](../../sibling/vk-api-schema/README.md)"),
        ("tools/s/wall/objects.json", '"$ref": "../../../../x/objects.json#/definitions/y"'),
        ("tools/s/wall/objects.json", '"mapping": {"a": "../../../../x/objects.json"}'),
        ("README.md", "export VK_API_SCHEMA_DIR=/work/shared/vk-api-schema"),
        ("docs/x.md", "logs in /home/alice/run"),
        ("tests/conftest.py", "ROOT = '/srv/checkouts/planner/tests'"),
        ("tests/deploy/x.py", 'open("../../Makefile")'),  # from the root, where tests run
    ])
    def test_outside_references_are_found(self, path: str, text: str) -> None:
        """Each way of pointing outside the tree is reported (one case per detector)."""
        assert outside_references(path, text, checkout="/srv/checkouts/planner") != []

    @pytest.mark.parametrize(("path", "text"), [
        ("deploy/README.md", "the variables of [the README](../README.md#configuration)"),
        ("tools/vk_sandbox/vk_api_schema/wall/objects.json",
         '"$ref": "../photos/objects.json#/definitions/photos_photo"'),
        ("tools/vk_sandbox/schema.py", "ROOT = Path(__file__).resolve().parents[2]"),
        ("Dockerfile", "COPY --from=build /opt/venv /opt/venv"),
        ("README.md", "[VK](https://dev.vk.com/../method)"),
        ("tools/s/messages/objects.json", '"location": "../messages/objects.json#/definitions/x"'),
    ])
    def test_references_inside_are_allowed(self, path: str, text: str) -> None:
        """References that stay inside the tree, container paths and URLs are fine."""
        assert outside_references(path, text, checkout="/srv/checkouts/planner") == []

    @pytest.mark.integration  # runs a process
    def test_no_tracked_file_points_outside_the_repository(self) -> None:
        """No file a clone has refers to a path above the repository root."""
        found = [
            reference
            for name in tracked_files() if PurePosixPath(name) != SCANNER
            for reference in outside_references(
                name, (REPOSITORY / name).read_text(encoding="utf-8", errors="replace"),
                checkout=str(REPOSITORY))
        ]
        assert found == []
