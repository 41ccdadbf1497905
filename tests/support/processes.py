"""Services as real processes (``python -m services.<name>``), for tests.

Launched, read and stopped through :class:`tools.processes.ChildProcess` (the one
launcher of ``make run``, the bench and the tests); this module adds what a test knows:
its :class:`~shared.settings.Settings` (:func:`tests.support.environment.service_environment`).
"""

from __future__ import annotations

from pathlib import Path

from shared.settings import Settings
from tests.support.environment import service_environment
from tools.processes import ChildProcess, python_module


def start_service(name: str, settings: Settings, *, log_path: Path | None = None,
                  **overrides: str) -> ChildProcess:
    """Start ``python -m services.<name>``; its output kept in memory, or in ``log_path``."""
    return ChildProcess(name, python_module(f"services.{name}"),
                        env=service_environment(settings, **overrides), log_path=log_path)
