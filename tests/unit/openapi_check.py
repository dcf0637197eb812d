"""Helpers shared by the tests that keep the OpenAPI descriptions true (SC and AC)."""
from __future__ import annotations

from typing import Any

import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


def load_spec(path: str) -> dict[str, Any]:
    """The OpenAPI document at ``path``."""
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def pointer(*parts: Any) -> str:
    """A JSON pointer from unescaped parts."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def resolve(spec: dict[str, Any], ref: str) -> Any:
    """The node a local ``#/...`` reference points at."""
    node: Any = spec
    for part in ref.lstrip("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def validator(spec: dict[str, Any], spec_uri: str, schema_pointer: str) -> Draft202012Validator:
    """A JSON Schema validator for the schema at ``schema_pointer`` inside the spec."""
    registry = Registry().with_resource(
        spec_uri, Resource.from_contents(spec, default_specification=DRAFT202012))
    return Draft202012Validator({"$ref": f"{spec_uri}#{schema_pointer}"}, registry=registry,
                                format_checker=Draft202012Validator.FORMAT_CHECKER)


def spec_operations(spec: dict[str, Any]) -> set[tuple[str, str]]:
    """(METHOD, path) of every operation the spec describes."""
    return {(method.upper(), path) for path, item in spec["paths"].items()
            for method in item if method in HTTP_METHODS}
