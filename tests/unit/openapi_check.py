"""Helpers shared by the tests that keep the OpenAPI descriptions true (SC and AC)."""
from __future__ import annotations

from typing import Any

import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
#: The spec's name in a validator's registry (its ``$ref``s resolve within the spec).
_SPEC_URI = "urn:cso-oaas:openapi"


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


def validator(spec: dict[str, Any], schema_pointer: str) -> Draft202012Validator:
    """A JSON Schema validator for the schema at ``schema_pointer`` inside the spec."""
    registry = Registry().with_resource(
        _SPEC_URI, Resource.from_contents(spec, default_specification=DRAFT202012))
    return Draft202012Validator({"$ref": f"{_SPEC_URI}#{schema_pointer}"}, registry=registry,
                                format_checker=Draft202012Validator.FORMAT_CHECKER)


def spec_operations(spec: dict[str, Any]) -> set[tuple[str, str]]:
    """(METHOD, path) of every operation the spec describes."""
    return {(method.upper(), path) for path, item in spec["paths"].items()
            for method in item if method in HTTP_METHODS}


def documented_response(spec: dict[str, Any], reply: Any) -> tuple[str, dict[str, Any]]:
    """(JSON pointer, response object) of the spec's answer for this exchange (a `Reply`)."""
    operation = spec["paths"][reply.route][reply.method.lower()]
    assert str(reply.status) in operation["responses"], \
        f"{reply.method} {reply.path} answered an undocumented {reply.status}: {reply.body}"
    response = operation["responses"][str(reply.status)]
    if "$ref" in response:
        return response["$ref"][1:], resolve(spec, response["$ref"])
    return pointer("paths", reply.route, reply.method.lower(), "responses", reply.status), response


def check_documented(spec: dict[str, Any], reply: Any) -> None:
    """Assert that the spec documents this answer (a routed `Reply`): its status, headers and
    media type, and that a JSON body follows the documented schema (no content: no body)."""
    where, response = documented_response(spec, reply)
    for header in response.get("headers", {}):
        assert header in reply.headers, (reply.method, reply.path, header)
    content = response.get("content", {})
    if not content:
        assert not reply.body, (reply.method, reply.path, reply.status)  # e.g. 204
        return
    assert reply.content_type in content, (reply.method, reply.path, reply.content_type)
    if reply.content_type.endswith("json"):  # application/json and the ALTO types
        schema = where + pointer("content", reply.content_type, "schema")
        errors = list(validator(spec, schema).iter_errors(reply.json))
        assert not errors, (reply.method, reply.path, reply.status,
                            [f"{list(e.absolute_path)}: {e.message}" for e in errors])
