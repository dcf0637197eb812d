"""Hostile input for the AC's user interface (UAI), fuzzed from docs/openapi-ac.yaml.

schemathesis generates valid (positive) and spec-breaking (negative) requests for every UAI
operation and sends them in process to an AC (``ac_harness.Lab``: fake agents, the real SC on
NSFNET behind ASI) as a user or the provider manager. Every answer must be no 5xx, a
documented status with a documented Content-Type and a body that follows its schema; a
negative request must be refused with a 4xx. One lab serves the module, so requests
accumulate, and after every request the strata agree: the SC's lightpaths are exactly the
ones AC requests hold, the agents' VMs exactly the ones AC requests hold, and nothing is left
pending or half released.

Bounded and repeatable: ``EXAMPLES`` cases per operation and mode, derandomized, no example
database, no shrinking.
"""
from __future__ import annotations

import os
from collections import Counter
from typing import Any, Optional

import pytest
import schemathesis
from hypothesis import given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from ac_app.db import PENDING, RELEASING
from ac_harness import USERS, Lab
import fuzz_check
from fuzz_check import CHECKS, check_answer, fuzz_settings, op_id

SPEC_FILE = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "openapi-ac.yaml")
SCHEMA = schemathesis.openapi.from_path(SPEC_FILE)
#: Generated cases per operation and generation mode.
EXAMPLES = 50
FUZZ = fuzz_settings(EXAMPLES)
#: NSFNET's user hosts (and a few that are not).
SOURCES = [f"10.1.{n}.1" for n in range(14)] + ["10.1.99.1", "10.2.1.1", "0"]
REQUEST_IDS = [f"req-{n}" for n in range(1, 40)] + ["req-0", "req-x"]
#: (METHOD, path, status) -> answers seen by the fuzz.
STATUSES: Counter[tuple[str, str, int]] = Counter()


def operations() -> list[Any]:
    """Every operation of the spec, in the spec's order."""
    return fuzz_check.operations(SCHEMA)


def has_input(op: Any) -> bool:
    """True when the operation takes parameters or a body (something to break)."""
    return fuzz_check.has_input(SCHEMA, op)


def request_bodies() -> st.SearchStrategy[dict[str, Any]]:
    """vod and vm requests from real user hosts, with optional constraints."""
    constraints = {"max_delay_ms": st.integers(1, 100), "max_hops": st.integers(1, 8),
                   "bandwidth_gbps": st.integers(1, 40), "duration_s": st.integers(1, 600)}
    vod = st.fixed_dictionaries(
        {"type": st.just("vod"), "src": st.sampled_from(SOURCES),
         "content": st.sampled_from(["movie", "news", "a.b-c_d"])}, optional=constraints)
    vm = st.fixed_dictionaries(
        {"type": st.just("vm"), "src": st.sampled_from(SOURCES), "cpu": st.integers(1, 64),
         "memory_gb": st.integers(0, 256), "disk_gb": st.integers(0, 2000)},
        optional=constraints)
    migration = st.fixed_dictionaries(
        {"type": st.just("migration"), "request": st.sampled_from(REQUEST_IDS)},
        optional={"dst_dc": st.sampled_from(["dc1", "dc4", "dc7", "dc9", "dc12", "dc2"])})
    return st.one_of(vod, vm, migration)


def seeded(op: Any, mode: GenerationMode) -> list[st.SearchStrategy[Any]]:
    """Strategies with real request ids and hosts, to reach past "no such request"."""
    found = []
    if any(p.name == "req_id" for p in op.path_parameters):
        found.append(st.sampled_from(REQUEST_IDS).flatmap(
            lambda req_id: op.as_strategy(mode, path_parameters={"req_id": req_id})))
    if op_id(op) == "POST /uai/v1/requests" and mode is GenerationMode.POSITIVE:
        found.append(request_bodies().flatmap(lambda body: op.as_strategy(mode, body=body)))
    return found


def check_invariants(lab: Lab) -> None:
    """The AC's records, the SC's lightpaths and the agents' VMs agree; nothing in flight."""
    records = lab.procedure.db.list()
    assert not [r.id for r in records if r.status in (PENDING, RELEASING)]
    held_lps = {r.lightpath_id for r in records if r.lightpath_id}
    assert {lp["id"] for lp in lab.lightpaths()} == held_lps
    held_vms = {r.vm_id for r in records if r.vm_id}
    assert {vm for vms in lab.arae.vms().values() for vm in vms} == held_vms


@pytest.fixture(scope="module")
def lab(tmp_path_factory: Any) -> Any:
    """One AC (and SC) for the module: requests accumulate."""
    the_lab = Lab(str(tmp_path_factory.mktemp("fuzz-ac")))
    yield the_lab
    the_lab.close()


def fuzz(lab: Lab, op: Any, mode: GenerationMode) -> None:
    """Send EXAMPLES generated requests for ``op`` as any user; check answers and invariants."""
    strategy = st.one_of(op.as_strategy(mode), *seeded(op, mode))

    @FUZZ
    @given(data=st.data())
    def run(data: Any) -> None:
        case = data.draw(strategy, label="case")
        token = data.draw(st.sampled_from(sorted(USERS.values())), label="token")
        response = case.call(app=lab.service.app, headers={"Authorization": f"Bearer {token}"})
        check_answer(case, response, mode, STATUSES)
        check_invariants(lab)

    run()


@pytest.mark.parametrize("op", operations(), ids=op_id)
def test_valid_requests_get_documented_answers(lab: Lab, op: Any) -> None:
    fuzz(lab, op, GenerationMode.POSITIVE)


@pytest.mark.parametrize("op", [op for op in operations() if has_input(op)], ids=op_id)
def test_invalid_requests_are_refused_with_a_documented_4xx(lab: Lab, op: Any) -> None:
    fuzz(lab, op, GenerationMode.NEGATIVE)


def test_the_fuzz_reached_the_handlers() -> None:
    """The seeds worked: requests were served, and some torn down."""
    fuzzed = {(method, path) for method, path, _status in STATUSES}
    for method, path, status in [
            ("POST", "/uai/v1/requests", 201),
            ("GET", "/uai/v1/requests/{req_id}", 200),
    ]:
        assert (method, path) not in fuzzed or STATUSES[method, path, status], \
            (method, path, status, STATUSES)


BAD_CREDENTIALS = [None, "", "Bearer", "Bearer ", "Basic YWxpY2U6YWxpY2UtdG9rZW4=",
                   "Bearer alice-tokenx", "Bearer ALICE-TOKEN", "Bearer " + "x" * 4096,
                   "Bearer test-ac-token", "Bearer alice-token bob-token"]


@pytest.mark.parametrize("op", [op for op in operations() if op.path != "/uai/v1/health"],
                         ids=op_id)
def test_wrong_credentials_are_refused_with_401(lab: Lab, op: Any) -> None:
    """No token, a malformed or unknown one, or the SC's ASI token: 401, nothing done."""

    @settings(FUZZ, max_examples=5)
    @given(case=op.as_strategy(), header=st.sampled_from(BAD_CREDENTIALS))
    def run(case: Any, header: Optional[str]) -> None:
        before = (lab.arae.vms(), lab.lightpaths(), len(lab.procedure.db.list()))
        case.headers = {k: v for k, v in (case.headers or {}).items()
                        if k.lower() != "authorization"}
        headers = {} if header is None else {"Authorization": header}
        response = case.call(app=lab.service.app, headers=headers)
        assert response.status_code == 401, (header, response.status_code, response.text)
        case.validate_response(response, checks=CHECKS)
        assert (lab.arae.vms(), lab.lightpaths(), len(lab.procedure.db.list())) == before

    run()


def test_finding_trailing_newline_is_another_path(lab: Lab) -> None:
    """Finding 4 (fixed, AC too): a path with a control character is a JSON 404."""
    for path in ("/uai/v1/requests%0A", "/uai/v1/requests%00"):
        reply = lab.user("alice").get(path)
        assert reply.status == 404, (path, reply.status)
        assert reply.json["error"] == "not-found", reply.body
