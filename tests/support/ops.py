"""The ops CLI run in-process as ``python -m tools.ops`` would run it, with scripted prompts.

:class:`Ops` calls :func:`tools.ops.cli.run` with the test's settings and an explicit
environment, capturing what it prints; prompts are scripted (:class:`ScriptedPrompts`),
so a test that does not expect a question fails if one is asked.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass, field

from shared.settings import Settings
from tools.ops.cli import run
from tools.ops.prompts import Prompts


@dataclass(frozen=True)
class Outcome:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


@dataclass
class ScriptedPrompts:
    """Answers questions from a list, in order, and records them."""

    answers: list[str] = field(default_factory=list)
    interactive: bool = True
    asked: list[str] = field(default_factory=list)

    def _answer(self, question: str) -> str:
        self.asked.append(question)
        if not self.answers:
            raise AssertionError(f"unexpected question: {question!r}")
        return self.answers.pop(0)

    def prompts(self) -> Prompts:
        return Prompts(hidden=self._answer, ask=self._answer, interactive=lambda: self.interactive)


@dataclass(frozen=True)
class Ops:
    """``await ops("projects", "list")`` runs the command as ``python -m tools.ops`` would."""

    settings: Settings
    environ: Mapping[str, str] = field(default_factory=dict)

    async def __call__(self, *argv: str, environ: Mapping[str, str] | None = None,
                       prompts: ScriptedPrompts | None = None) -> Outcome:
        out, err = io.StringIO(), io.StringIO()
        script = prompts or ScriptedPrompts(interactive=False)
        code = await run(argv, settings=self.settings,
                         environ=self.environ if environ is None else environ,
                         prompts=script.prompts(), out=out, err=err)
        return Outcome(code, out.getvalue(), err.getvalue())
