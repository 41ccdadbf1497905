"""``projects add|list|show`` against a real mongod; tokens never shown."""

from __future__ import annotations

from datetime import UTC, datetime

from pymongo.asynchronous.database import AsyncDatabase

from shared.mongo import PROJECTS, SYSTEM_POSTS, Document
from tests.support.ops import Ops, ScriptedPrompts

TOKEN = "vk1.a.user-token-ABCDEF0123456789"
SECRET = "callback-secret-0123456789"
ENV = {"VK_USER_TOKEN": TOKEN, "VK_CALLBACK_SECRET": SECRET}


def assert_no_secrets(*texts: str) -> None:
    for text in texts:
        assert TOKEN not in text and SECRET not in text


class TestProjectsAdd:
    async def test_round_trip_with_token_from_the_environment(
            self, ops: Ops, db: AsyncDatabase[Document]) -> None:
        """add stores the project with token and secret from the environment; list and show
        describe it, showing both only as set."""
        added = await ops("projects", "add", "--id", "acme", "--name", "Acme Shop",
                          "--group-id", "4242", environ=ENV)
        assert added.code == 0, added.err
        assert "project acme added: community 4242" in added.out
        stored = await db[PROJECTS].find_one({"_id": "acme"})
        assert stored is not None
        assert (stored["name"], stored["vk_group_id"], stored["vk_user_token"],
                stored["vk_callback_secret"]) == ("Acme Shop", 4242, TOKEN, SECRET)

        listed = await ops("projects", "list")
        assert listed.code == 0, listed.err
        header, row = listed.out.splitlines()
        assert header.split() == ["ID", "NAME", "GROUP", "TOKEN", "SECRET", "SCHEDULED",
                                  "PUBLISHED", "SUGGESTED", "pending_publication", "publishing",
                                  "error", "possible_error"]
        assert row.split() == ["acme", "Acme", "Shop", "4242", "set", "set", "-", "-", "-",
                               "0", "0", "0", "0"]

        shown = await ops("projects", "show", "acme")
        assert shown.code == 0, shown.err
        assert "user token         set" in shown.out
        assert "callback secret    set" in shown.out
        assert "confirmation code  unset" in shown.out
        assert_no_secrets(added.text, listed.text, shown.text)

    async def test_token_from_a_hidden_prompt(self, ops: Ops, db: AsyncDatabase[Document]) -> None:
        """Without VK_USER_TOKEN, a terminal user is asked (hidden); an empty secret is none."""
        script = ScriptedPrompts(answers=[TOKEN, ""])
        added = await ops("projects", "add", "--id", "p1", "--name", "P", "--group-id", "7",
                          environ={}, prompts=script)
        assert added.code == 0, added.err
        assert [question.split(" (")[0] for question in script.asked] == [
            "VK user token", "Callback secret"]
        stored = await db[PROJECTS].find_one({"_id": "p1"})
        assert stored is not None
        assert (stored["vk_user_token"], stored["vk_callback_secret"]) == (TOKEN, None)
        assert "callback secret unset" in added.out
        assert_no_secrets(added.text)

    async def test_no_token_and_no_terminal_is_a_usage_error(
            self, ops: Ops, db: AsyncDatabase[Document]) -> None:
        """Not interactive and no VK_USER_TOKEN: exit 2, nothing stored."""
        result = await ops("projects", "add", "--id", "p1", "--name", "P", "--group-id", "7",
                           environ={})
        assert (result.code, result.out) == (2, "")
        assert result.err == ("error: no VK_USER_TOKEN: set it in the environment or run in a "
                              "terminal to be asked\n")
        assert await db[PROJECTS].count_documents({}) == 0

    async def test_duplicate_id_is_refused_a_shared_community_is_not(self, ops: Ops) -> None:
        """A second project with the same id fails with one line; a second project for the
        same community is added (several teams may plan for one), and told so."""
        assert (await ops("projects", "add", "--id", "a", "--name", "A", "--group-id", "1",
                          environ=ENV)).code == 0
        same_id = await ops("projects", "add", "--id", "a", "--name", "A", "--group-id", "2",
                            environ=ENV)
        assert (same_id.code, same_id.err) == (1, "error: project a already exists\n")
        same_group = await ops("projects", "add", "--id", "b", "--name", "B", "--group-id", "1",
                               environ=ENV)
        assert same_group.code == 0, same_group.err
        assert "community 1 is shared with: a\n" in same_group.out

    async def test_bad_group_id_is_a_usage_error(self, ops: Ops) -> None:
        """--group-id must be a positive integer (argparse's usage error, exit 2)."""
        result = await ops("projects", "add", "--id", "a", "--name", "A", "--group-id", "-3",
                           environ=ENV)
        assert result.code == 2
        assert "argument --group-id: must be positive: -3" in result.err


class TestProjectsList:
    async def test_refresh_status_and_system_post_counts(
            self, ops: Ops, db: AsyncDatabase[Document]) -> None:
        """Per content type the last refresh outcome; per status the number of system posts."""
        now = datetime.now(UTC)
        await db[PROJECTS].insert_one({
            "_id": "p", "name": "P", "vk_group_id": 5, "vk_confirmation_code": "c",
            "vk_callback_secret": None, "vk_user_token": TOKEN,
            "refresh_status": {"scheduled": {"ok": True, "error": None, "at": now},
                               "published": {"ok": False, "error": "VK error 15 in wall.get: "
                                             "Access denied", "at": now}}})
        await db[SYSTEM_POSTS].insert_many([
            {"project_id": "p", "text": "t", "attachments": [], "publication_date": now,
             "status": status, "vk_post_id": None, "error": None}
            for status in ("error", "error", "pending_publication", "possible_error")])
        listed = await ops("projects", "list")
        assert listed.code == 0, listed.err
        assert listed.out.splitlines()[1].split() == [
            "p", "P", "5", "set", "unset", "ok", "error", "-", "1", "0", "2", "1"]
        assert_no_secrets(listed.text)

    async def test_no_projects(self, ops: Ops) -> None:
        """An empty database says so."""
        assert (await ops("projects", "list")).out == "no projects\n"


class TestProjectsShow:
    async def test_details_of_refreshes(self, ops: Ops, db: AsyncDatabase[Document]) -> None:
        """show lists each content type's last refresh with its error, and cached posts."""
        await db[PROJECTS].insert_one({
            "_id": "p", "name": "P", "vk_group_id": 5, "vk_confirmation_code": "c",
            "vk_callback_secret": SECRET, "vk_user_token": TOKEN,
            "refresh_status": {"published": {"ok": False, "error": "VK error 15 in wall.get: "
                                             "Access denied", "at": datetime.now(UTC)}}})
        shown = await ops("projects", "show", "p")
        assert shown.code == 0, shown.err
        published = next(line for line in shown.out.splitlines() if line.startswith("published"))
        assert published.split()[:2] == ["published", "error"]
        assert published.endswith("VK error 15 in wall.get: Access denied")
        scheduled = next(line for line in shown.out.splitlines() if line.startswith("scheduled"))
        assert scheduled.split() == ["scheduled", "never", "-", "0", "-"]
        assert_no_secrets(shown.text)

    async def test_unknown_project(self, ops: Ops) -> None:
        """An unknown id is one error line and exit 1, no traceback."""
        result = await ops("projects", "show", "nope")
        assert (result.code, result.out, result.err) == (1, "", "error: unknown project: nope\n")
