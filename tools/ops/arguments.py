"""Argument types of the command line: bad values are usage errors (exit 2) with a clear line."""

from __future__ import annotations

import argparse
from urllib.parse import urlsplit


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {value}")
    return value


def positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text}")
    return value


def identifier(text: str) -> str:
    """A non-empty id without whitespace (project ids, correlation ids)."""
    if not text or any(character.isspace() for character in text):
        raise argparse.ArgumentTypeError(f"not an id: {text!r}")
    return text


def http_url(text: str) -> str:
    """An absolute http(s) URL, as VK requires of a callback server."""
    parts = urlsplit(text)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise argparse.ArgumentTypeError(f"not an http(s) URL: {text!r}")
    return text
