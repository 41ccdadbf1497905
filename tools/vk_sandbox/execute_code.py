"""The subset of VKScript the sandbox's ``execute`` understands.

Only a return of API calls with literal parameters::

    return API.wall.get({"owner_id": -1, "count": 20});
    return [API.wall.get({"owner_id": -1}), API.wall.get({'owner_id': -2, filter: 'owner'})];

Keys may be double-quoted, single-quoted or bare; values are JSON-like literals:
strings, numbers, ``true``/``false`` (sent as 1/0), ``null`` (left out), arrays
(sent comma-joined) and objects (sent as JSON), as VK reads them. Anything else is
error 12, like code VK cannot compile.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from .errors import COMPILE_ERROR, RUNTIME_ERROR, VkApiError

MAX_EXECUTE_CALLS = 25

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
      | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<punct>[\[\]{}().,:;])
    )""",
    re.VERBOSE,
)
_KEYWORD_VALUES: dict[str, Any] = {"true": True, "false": False, "null": None}
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "/": "/"}


@dataclass(frozen=True)
class InnerCall:
    method: str
    params: dict[str, str]


@dataclass(frozen=True)
class ExecuteProgram:
    calls: list[InnerCall]
    returns_list: bool  # "return [...]" rather than "return API...."


def _compile_error(detail: str) -> VkApiError:
    return VkApiError(COMPILE_ERROR, detail)


def _unquote(literal: str) -> str:
    if literal.startswith('"'):
        try:
            return str(json.loads(literal))  # JSON strings, \uXXXX escapes included
        except ValueError:
            pass
    body = literal[1:-1]
    return re.sub(r"\\(.)", lambda match: _ESCAPES.get(match[1], match[1]), body)


class _Parser:
    def __init__(self, code: str) -> None:
        self._tokens: list[tuple[str, str]] = []
        position = 0
        code = code.rstrip()
        while position < len(code):
            match = _TOKEN.match(code, position)
            if match is None or match.end() == position:
                raise _compile_error(f"unexpected character at {position}")
            kind = match.lastgroup or ""
            self._tokens.append((kind, match[kind]))
            position = match.end()
        self._index = 0

    def _peek(self) -> tuple[str, str] | None:
        return self._tokens[self._index] if self._index < len(self._tokens) else None

    def _next(self) -> tuple[str, str]:
        token = self._peek()
        if token is None:
            raise _compile_error("unexpected end of code")
        self._index += 1
        return token

    def _expect(self, value: str) -> None:
        kind, text = self._next()
        if text != value or kind == "string":
            raise _compile_error(f"expected {value!r}, got {text!r}")

    def _at(self, value: str) -> bool:
        token = self._peek()
        return token is not None and token[0] != "string" and token[1] == value

    def program(self) -> ExecuteProgram:
        self._expect("return")
        if self._at("["):
            self._next()
            calls: list[InnerCall] = []
            while not self._at("]"):
                calls.append(self._call())
                if not self._at("]"):
                    self._expect(",")
            self._next()
            program = ExecuteProgram(calls, returns_list=True)
        else:
            program = ExecuteProgram([self._call()], returns_list=False)
        if self._at(";"):
            self._next()
        if self._peek() is not None:
            raise _compile_error("only a single return statement is supported")
        return program

    def _call(self) -> InnerCall:
        self._expect("API")
        self._expect(".")
        section = self._name()
        self._expect(".")
        method = self._name()
        self._expect("(")
        params: dict[str, str] = {}
        if not self._at(")"):
            params = self._object()
        self._expect(")")
        return InnerCall(f"{section}.{method}", params)

    def _name(self) -> str:
        kind, text = self._next()
        if kind != "name":
            raise _compile_error(f"expected a name, got {text!r}")
        return text

    def _object(self) -> dict[str, str]:
        """Call parameters; null ones are left out, the rest sent as VK reads a form."""
        return {key: _param_text(value) for key, value in self._mapping().items()
                if value is not None}

    def _mapping(self) -> dict[str, Any]:
        self._expect("{")
        mapping: dict[str, Any] = {}
        while not self._at("}"):
            kind, key = self._next()
            if kind == "string":
                key = _unquote(key)
            elif kind != "name":
                raise _compile_error(f"expected a key, got {key!r}")
            self._expect(":")
            mapping[key] = self._value()
            if not self._at("}"):
                self._expect(",")
        self._next()
        return mapping

    def _value(self) -> Any:
        if self._at("{"):
            return self._mapping()
        if self._at("["):
            self._next()
            items: list[Any] = []
            while not self._at("]"):
                items.append(self._value())
                if not self._at("]"):
                    self._expect(",")
            self._next()
            return items
        kind, text = self._next()
        if kind == "string":
            return _unquote(text)
        if kind == "number":
            return json.loads(text)
        if kind == "name" and text in _KEYWORD_VALUES:
            return _KEYWORD_VALUES[text]
        raise _compile_error(f"unsupported value {text!r}")


def _param_text(value: Any) -> str:
    """A literal as a form parameter: flags 1/0, arrays comma-joined, objects as JSON."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, list):
        return ",".join(_param_text(item) for item in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


def parse_execute_code(code: str) -> ExecuteProgram:
    """Parse ``code``; VK error 12 if it is outside the supported form, 13 if over 25 calls."""
    program = _Parser(code).program()
    if len(program.calls) > MAX_EXECUTE_CALLS:
        raise VkApiError(RUNTIME_ERROR, f"too many API calls (more than {MAX_EXECUTE_CALLS})")
    return program
