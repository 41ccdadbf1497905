"""``python -m tools.ops`` as a process and as a parser: help, settings, exit statuses."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Iterator

from pymongo.asynchronous.database import AsyncDatabase

from shared.mongo import Document
from shared.settings import Settings
from tests.support.documents import insert_project
from tests.support.environment import service_environment
from tests.support.ops import Ops
from tools.mongod import free_port
from tools.ops.cli import build_parser
from tools.processes import ROOT

COMMANDS = ("projects", "callback", "dlq", "posts")


async def ops_process(*argv: str, env: dict[str, str]) -> tuple[int, str, str]:
    """Run ``python -m tools.ops`` for real; (exit status, stdout, stderr)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tools.ops", *argv, cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def parsers(parser: argparse.ArgumentParser, path: str = "") -> Iterator[
        tuple[str, argparse.ArgumentParser, argparse.Action]]:
    """Every (command path, parser, action) of the command line, sub-commands included."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from parsers(child, f"{path} {name}".strip())
        yield path, parser, action


class TestHelp:
    async def test_help_as_a_process(self, settings: Settings) -> None:
        """``python -m tools.ops --help`` exits 0 and names every command."""
        code, out, err = await ops_process("--help", env=service_environment(settings))
        assert (code, err) == (0, "")
        assert out.startswith("usage: python -m tools.ops [-h] COMMAND ...")
        for command in COMMANDS:
            assert f"\n    {command} " in out

    def test_every_command_and_option_is_described(self) -> None:
        """Each command has a description, each sub-command and option a help text."""
        for path, parser, action in parsers(build_parser()):
            assert parser.description, f"{path or 'the program'} has no description"
            if isinstance(action, argparse._SubParsersAction):
                for choice in action._choices_actions:
                    assert choice.help, f"{path} {choice.dest} has no help"
            elif not isinstance(action, argparse._HelpAction):
                assert action.help, f"{path}: {action.option_strings or action.dest} has no help"

    async def test_help_of_a_sub_command(self, ops: Ops) -> None:
        """--help of a sub-command prints its usage and exits 0."""
        result = await ops("dlq", "replay", "--help")
        assert result.code == 0
        assert result.out.startswith("usage: python -m tools.ops dlq replay")


class TestExitStatus:
    async def test_settings_come_from_the_environment(
            self, settings: Settings, db: AsyncDatabase[Document]) -> None:
        """A real process reads MONGO_URL / MONGO_DB like the services; the token stays hidden."""
        await insert_project(db, group_id=31, _id="from-env", token="vk1.a.hidden-token-31")
        code, out, err = await ops_process("projects", "list", env=service_environment(settings))
        assert (code, err) == (0, "")
        assert out.splitlines()[1].split()[:5] == ["from-env", "Project", "31", "31", "set"]
        assert "hidden-token" not in out

    async def test_invalid_configuration_is_a_usage_error(self, settings: Settings) -> None:
        """A bad variable: exit 2 and one line naming it, as the services do."""
        code, out, err = await ops_process(
            "projects", "list", env=service_environment(settings, MONGO_DB="bad/name"))
        assert (code, out) == (2, "")
        assert err.startswith("invalid configuration: MONGO_DB: ")
        assert len(err.splitlines()) == 1

    async def test_unknown_command_is_a_usage_error(self, ops: Ops) -> None:
        """argparse's usage error: exit 2, usage on stderr."""
        result = await ops("frobnicate")
        assert (result.code, result.out) == (2, "")
        assert "invalid choice: 'frobnicate'" in result.err

    async def test_unreachable_broker_is_one_line_without_credentials(
            self, settings: Settings) -> None:
        """RabbitMQ down: exit 1 and one error line, the password in AMQP_URL not shown."""
        unreachable = settings.model_copy(update={
            "amqp_url": f"amqp://guest:hunter2@127.0.0.1:{free_port()}/"})
        result = await Ops(unreachable)("dlq", "list")
        assert (result.code, result.out) == (1, "")
        assert result.err.startswith("error: RabbitMQ: ")
        assert len(result.err.splitlines()) == 1
        assert "hunter2" not in result.err
