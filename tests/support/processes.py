"""Services as real processes (``python -m services.<name>``), for tests.

Launched, read and stopped through :class:`tools.processes.ChildProcess` (the one
launcher of ``make run``, the bench and the tests); this module adds what a test knows:
its :class:`~shared.settings.Settings`.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import SecretStr

from shared.settings import Settings
from tools.processes import ChildProcess, python_module


def service_environment(settings: Settings, **overrides: str) -> dict[str, str]:
    """Every settings field as the environment variable the service reads, plus overrides."""
    env = dict(os.environ)
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        variable = name.upper()
        if value is None:
            env.pop(variable, None)
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        env[variable] = str(value)
    env.update(LOG_FORMAT="json", PYTHONUNBUFFERED="1")
    env.update(overrides)
    return env


def start_service(name: str, settings: Settings, *, log_path: Path | None = None,
                  **overrides: str) -> ChildProcess:
    """Start ``python -m services.<name>``; its output kept in memory, or in ``log_path``."""
    return ChildProcess(name, python_module(f"services.{name}"),
                        env=service_environment(settings, **overrides), log_path=log_path)
