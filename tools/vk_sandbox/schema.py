"""Validation against VK's official API JSON schema (``vk-api-schema``, API 5.199).

The schema files mix two JSON Schema generations: they use ``allOf``/``oneOf``
(draft 4+) but mark required properties draft-3 style, with ``"required": true``
inside each property. ``Draft3Validator`` would understand ``required`` but silently
ignore ``allOf`` (which is how ``wall_wall_item`` is built), and ``Draft7Validator``
would crash on a boolean ``required``. So :data:`VkSchemaValidator` is draft 7 with
draft-3 ``properties``.

Each file's ``"$schema": "../schema.json"`` is not a metaschema any library knows,
so every file is registered explicitly as a draft-7 resource under its ``file://``
URI; relative references such as
``{"$ref": "../wall/objects.json#/definitions/wall_wall_item"}`` then resolve against
it, and nothing is ever fetched.

The schema is the copy vendored in ``vk_api_schema/`` beside this module (the files
the sandbox's methods and callbacks reach, verbatim; see its README.md);
``$VK_API_SCHEMA_DIR`` points at another copy, e.g. a full checkout of a newer version.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator, ValidationError
from jsonschema.exceptions import best_match
from jsonschema.validators import extend
from referencing import Registry, Resource
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT7

__all__ = [
    "SchemaValidationError",
    "VkSchema",
    "callback_definition",
    "load_schema",
    "schema_dir",
    "validate_callback",
    "validate_error",
    "validate_method_response",
    "validate_object",
    "validate_response",
]

SCHEMA_DIR_ENV = "VK_API_SCHEMA_DIR"
VENDORED_SCHEMA_DIR = Path(__file__).resolve().parent / "vk_api_schema"
SchemaValidationError = ValidationError


def schema_dir() -> Path:
    """Where the VK schema lives: ``$VK_API_SCHEMA_DIR``, else the vendored copy."""
    if explicit := os.environ.get(SCHEMA_DIR_ENV):
        return Path(explicit)
    return VENDORED_SCHEMA_DIR


def _properties_with_inline_required(
    validator: Any, properties: Mapping[str, Any], instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    """Draft-7 ``properties`` that also honours draft-3 ``"required": true`` in a property."""
    if not validator.is_type(instance, "object"):
        return
    for name, subschema in properties.items():
        if name in instance:
            yield from validator.descend(instance[name], subschema, path=name, schema_path=name)
        elif isinstance(subschema, Mapping) and subschema.get("required") is True:
            yield ValidationError(f"{name!r} is a required property")


def _required_list_only(
    validator: Any, required: Any, instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    """Draft-7 ``required`` (a list); the draft-3 boolean form is handled by the parent."""
    if isinstance(required, bool) or not validator.is_type(instance, "object"):
        return
    for name in required:
        if name not in instance:
            yield ValidationError(f"{name!r} is a required property")


VkSchemaValidator: Any = extend(
    Draft7Validator,
    validators={"properties": _properties_with_inline_required, "required": _required_list_only},
)


class VkSchema:
    """All files of one schema directory, addressable as ``section/file.json#/pointer``."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        if not (self.root / "wall" / "objects.json").is_file():
            raise FileNotFoundError(
                f"no VK API schema at {self.root} (set {SCHEMA_DIR_ENV} to its directory)"
            )
        resources: list[tuple[str, Resource[Any]]] = []
        for path in sorted(self.root.glob("**/*.json")):
            contents = json.loads(path.read_text(encoding="utf-8"))
            resources.append((path.as_uri(), DRAFT7.create_resource(contents)))
        self.registry: Registry[Any] = Registry().with_resources(resources)
        self._methods: dict[str, dict[str, dict[str, Any]]] = {}

    def uri(self, reference: str) -> str:
        """Absolute URI of ``wall/objects.json#/definitions/x`` (relative to the root)."""
        file_part, _, fragment = reference.partition("#")
        return f"{(self.root / file_part).as_uri()}#{fragment}"

    def has(self, reference: str) -> bool:
        """Whether ``reference`` names an existing definition."""
        try:
            self.registry.resolver().lookup(self.uri(reference))
        except Unresolvable:
            return False
        return True

    def method_response_reference(self, method: str, extended: bool = False) -> str:
        """The response definition ``methods.json`` names for ``method`` (``wall.get``)."""
        section = method.split(".", 1)[0]
        description = self._method_descriptions(section).get(method)
        if description is None:
            raise KeyError(f"the schema does not describe {method!r}")
        responses = description["responses"]
        response = responses.get("extendedResponse") if extended else None
        file_part, _, fragment = (response or responses["response"])["$ref"].partition("#")
        path = (self.root / section / file_part).resolve().relative_to(self.root)
        return f"{path.as_posix()}#{fragment}"

    def _method_descriptions(self, section: str) -> dict[str, dict[str, Any]]:
        if section not in self._methods:
            methods_file = self.root / section / "methods.json"
            listed = (json.loads(methods_file.read_text(encoding="utf-8"))["methods"]
                      if methods_file.is_file() else [])
            self._methods[section] = {description["name"]: description for description in listed}
        return self._methods[section]

    def validate(self, reference: str, instance: Any) -> None:
        """Raise :class:`SchemaValidationError` unless ``instance`` matches ``reference``."""
        validator = VkSchemaValidator({"$ref": self.uri(reference)}, registry=self.registry)
        error = best_match(validator.iter_errors(instance))
        if error is not None:
            raise error


@lru_cache(maxsize=4)
def load_schema(root: Path | None = None) -> VkSchema:
    """The (cached) schema of ``root``, by default :func:`schema_dir`."""
    return VkSchema(root or schema_dir())


def _definition_reference(name: str, kind: str) -> str:
    """``wall_get_response`` → ``wall/responses.json#/definitions/wall_get_response``."""
    if "#" in name:
        return name
    section = name.split("_", 1)[0]
    return f"{section}/{kind}.json#/definitions/{name}"


def validate_response(definition: str, payload: Any) -> None:
    """Check a whole method reply (``{"response": ...}``) against a response definition.

    ``definition`` is a name such as ``wall_get_response`` / ``base_ok_response`` or a
    full reference such as ``wall/responses.json#/definitions/wall_get_response``.
    """
    load_schema().validate(_definition_reference(definition, "responses"), payload)


def validate_method_response(method: str, payload: Any, extended: bool = False) -> None:
    """Check a reply of ``method`` (e.g. ``wall.get``) against the response its schema names.

    ``extended`` picks the ``extendedResponse`` (``extended=1`` calls). Error replies are
    checked with :func:`validate_error`.
    """
    schema = load_schema()
    if isinstance(payload, Mapping) and "error" in payload:
        validate_error(payload)
        return
    schema.validate(schema.method_response_reference(method, extended), payload)


def validate_object(definition: str, payload: Any) -> None:
    """Check one object against an object definition such as ``wall_wall_item``."""
    load_schema().validate(_definition_reference(definition, "objects"), payload)


def validate_error(payload: Any) -> None:
    """Check an error reply ``{"error": {...}}``: its ``error`` is a ``base_error``."""
    if not isinstance(payload, Mapping) or set(payload) != {"error"}:
        raise SchemaValidationError(f"an error reply has exactly one key 'error': {payload!r}")
    validate_object("base_error", payload["error"])


def callback_definition(event_type: str) -> str | None:
    """The schema definition of a callback event's ``object``, if VK publishes one."""
    reference = f"callback/objects.json#/definitions/callback_{event_type}"
    return reference if load_schema().has(reference) else None


def validate_callback(payload: Any) -> None:
    """Check a Callback API request body: the envelope, and the object where defined.

    The envelope is ``callback_base`` (``callback_confirmation`` for the handshake);
    the ``object`` is ``callback_<type>`` when the schema defines it (for instance
    ``callback_wall_post_new`` and ``callback_wall_repost``; there is none for
    ``wall_schedule_post_*``).
    """
    schema = load_schema()
    if isinstance(payload, Mapping) and payload.get("type") == "confirmation":
        schema.validate("callback/objects.json#/definitions/callback_confirmation", payload)
        return
    schema.validate("callback/objects.json#/definitions/callback_base", payload)
    if "object" not in payload:
        raise SchemaValidationError("a callback event carries an 'object'")
    if (reference := callback_definition(str(payload["type"]))) is not None:
        schema.validate(reference, payload["object"])
