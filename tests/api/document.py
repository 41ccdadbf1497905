"""``shared/openapi.yaml`` for tests: the parsed document and schemathesis views of it."""

from __future__ import annotations

from functools import cache
from typing import Any

import schemathesis
import yaml
from schemathesis import Case, Response
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.specs.openapi.schemas import OpenApiSchema

from shared.openapi import DOCUMENT_PATH

ApiCase = Case[Any]  # a request schemathesis generated (or was given) for an operation
# The answer is one the document describes: status code, media type, headers and body.
DOCUMENTED = [status_code_conformance, content_type_conformance, response_headers_conformance,
              response_schema_conformance]
# What every answer of a running service with its dependencies up must satisfy.
CONFORMANCE_CHECKS = [not_a_server_error, *DOCUMENTED]
# An event stream is read up to its first event (it never ends by itself), or for this long.
STREAM_READ_SECONDS = 2.0


@cache
def document() -> dict[str, Any]:
    """The parsed document (cached: treat as read-only)."""
    loaded: dict[str, Any] = yaml.safe_load(DOCUMENT_PATH.read_text(encoding="utf-8"))
    return loaded


def api_schema(service: str) -> OpenApiSchema:
    """The operations ``service`` serves (the document tags each with its services)."""
    config = schemathesis.Config.from_dict({"max-stream-events": 1,
                                            "request-timeout": STREAM_READ_SECONDS})
    schema = schemathesis.openapi.from_path(DOCUMENT_PATH, config=config)
    included = schema.include(tag=service)
    assert isinstance(included, OpenApiSchema)
    return included


def conforms(case: ApiCase, response: Response, checks: list[Any] | None = None) -> None:
    """Raise (with a reproducing curl command) unless the answer conforms to the document."""
    case.validate_response(response, checks=checks or CONFORMANCE_CHECKS)
