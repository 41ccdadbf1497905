"""Questions to the operator: hidden input for tokens, yes/no before destructive steps.

Injected into :func:`tools.ops.cli.run` so tests can answer them; the defaults use
the terminal (``getpass`` never echoes what is typed).
"""

from __future__ import annotations

import getpass
import sys
from collections.abc import Callable
from dataclasses import dataclass


def _ask(question: str) -> str:
    """A line from stdin, the question on stderr (stdout stays the command's output)."""
    print(question, end="", file=sys.stderr, flush=True)
    return sys.stdin.readline()


def _stdin_is_terminal() -> bool:
    return sys.stdin is not None and sys.stdin.isatty()


@dataclass(frozen=True, slots=True)
class Prompts:
    hidden: Callable[[str], str] = getpass.getpass
    ask: Callable[[str], str] = _ask
    interactive: Callable[[], bool] = _stdin_is_terminal

    def confirm(self, question: str) -> bool:
        """True only for an explicit yes; end of input means no."""
        return self.ask(f"{question} [y/N] ").strip().lower() in {"y", "yes"}
