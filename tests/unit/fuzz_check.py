"""Pieces shared by the schemathesis fuzz tests of the SC and the AC interfaces."""
from __future__ import annotations

from collections import Counter
from typing import Any

from hypothesis import HealthCheck, Phase, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance, negative_data_rejection,
                                               response_schema_conformance,
                                               status_code_conformance)

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


def fuzz_settings(examples: int) -> Any:
    """Bounded and repeatable: derandomized, no example database, no shrinking."""
    return settings(max_examples=examples, derandomize=True, database=None, deadline=None,
                    suppress_health_check=list(HealthCheck),
                    phases=(Phase.explicit, Phase.generate))


def operations(schema: Any) -> list[Any]:
    """Every operation of the spec, in the spec's order."""
    return [result.ok() for result in schema.get_all_operations()]


def has_input(schema: Any, op: Any) -> bool:
    """True when the operation takes parameters or a body (something to break)."""
    item = schema.raw_schema["paths"][op.path]
    definition = item[op.method.lower()]
    return bool(item.get("parameters") or definition.get("parameters")
                or definition.get("requestBody"))


def op_id(op: Any) -> str:
    """A readable test id."""
    return f"{op.method.upper()} {op.path}"


def check_answer(case: Any, response: Any, mode: GenerationMode,
                 statuses: Counter[tuple[str, str, int]]) -> None:
    """Count the answer and check it: documented, no 5xx; a negative case must get a 4xx."""
    op = case.operation
    statuses[op.method.upper(), op.path, response.status_code] += 1
    checks = list(CHECKS)
    # Too large, wrong media type: refusals schemathesis does not count as such.
    if mode is GenerationMode.NEGATIVE and response.status_code not in (413, 415):
        checks.append(negative_data_rejection)
    case.validate_response(response, checks=checks)
