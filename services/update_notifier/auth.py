"""The optional bearer token guarding the notifier's API (``NOTIFIER_TOKEN``)."""

from __future__ import annotations

import hmac

from pydantic import SecretStr

_SCHEME = "bearer "


def presented_token(authorization: str | None, query_token: str | None = None) -> str | None:
    """The token a request carries: ``Authorization: Bearer …``, else ``?access_token=``.

    Pass ``query_token`` only where headers cannot be set (``EventSource``).
    """
    if authorization is not None and authorization[:len(_SCHEME)].lower() == _SCHEME:
        return authorization[len(_SCHEME):].strip()
    return query_token


def is_authorized(expected: SecretStr | None, presented: str | None) -> bool:
    """True when no token is configured, or the presented one matches (in constant time)."""
    if expected is None:
        return True
    if presented is None:
        return False
    return hmac.compare_digest(presented.encode(), expected.get_secret_value().encode())
