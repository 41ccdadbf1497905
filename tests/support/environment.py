"""The environment a service process started by a test runs with."""

from __future__ import annotations

import os

from pydantic import SecretStr

from shared.settings import Settings


def service_environment(settings: Settings, **overrides: str) -> dict[str, str]:
    """This process's environment with every settings field as the variable the service
    reads (unset where the field is None), JSON logs, unbuffered output, then ``overrides``."""
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
