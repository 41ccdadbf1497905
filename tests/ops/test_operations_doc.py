"""docs/operations.md shows only commands and options the CLI has, and all of them."""

from __future__ import annotations

import argparse
import re

from tools.ops.cli import build_parser
from tools.processes import ROOT

WORD = re.compile(r"--[a-z][a-z-]*|[a-z][a-z_]*")


def operations_doc() -> str:
    return (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")


def shown_commands() -> list[str]:
    """What follows ``tools.ops`` in code blocks (per line) and inline code (per span)."""
    document = operations_doc()
    blocks = re.findall(r"```sh\n(.*?)```", document, flags=re.DOTALL)
    lines = [line.split("#")[0] for block in blocks for line in block.splitlines()]
    spans = re.findall(r"`([^`]+)`", re.sub(r"```.*?```", "", document, flags=re.DOTALL))
    found = [" ".join(text.split()) for text in (*lines, *spans)]
    return [text.split("tools.ops", 1)[1] for text in found if "tools.ops " in text]


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def options(parser: argparse.ArgumentParser) -> set[str]:
    return {option for action in parser._actions for option in action.option_strings}


class TestOperationsDoc:
    def test_operating_commands_exist(self) -> None:
        """Every ``tools.ops`` command shown names real sub-commands and options of them."""
        commands = shown_commands()
        assert len(commands) >= 15
        for command in commands:
            parser = build_parser()
            words = WORD.findall(command)
            while words and words[0] in subcommands(parser):
                parser = subcommands(parser)[words.pop(0)]
            assert subcommands(parser) == {} or words == ["--help"], f"incomplete: {command}"
            for option in (word for word in words if word.startswith("--")):
                assert option in options(parser), f"{option} is not an option of: {command}"

    def test_every_command_is_shown(self) -> None:
        """Each sub-command of the CLI appears in the document."""
        shown = {" ".join(WORD.findall(command)[:2]) for command in shown_commands()}
        for name, command in subcommands(build_parser()).items():
            for action in subcommands(command):
                assert f"{name} {action}" in shown, f"{name} {action} is not in docs/operations.md"
