"""The UA and the typed layer under the UAI: JSON to typed requests, domain errors of a kind,
the procedure and the migration driven without HTTP, and the UAI's one mapping to statuses."""
import ast
import pathlib

import pytest

from ac_app.config import User
from ac_app.db import ACTIVE, FAILED, REFUSED
from ac_app.requests import AppRequest, Kind, MigrationRequest, RequestError
from ac_app.resources import Demand
from ac_app.uai import STATUS, api_error
from ac_harness import lab  # noqa: F401 (fixture)
from sc_harness import state_dir  # noqa: F401 (fixture)

ALICE = User("alice", "user", "alice-token")
MGR = User("mgr", "provider-manager", "mgr-token")
ROOT = pathlib.Path(__file__).resolve().parents[2]


def errors(call, *args):
    with pytest.raises(RequestError) as info:
        call(*args)
    return info.value


def test_the_ua_turns_json_into_typed_requests(lab):
    ua = lab.service.ua
    vod = ua.parse(ALICE, {"type": "vod", "src": "10.1.5.1", "content": "movie",
                           "max_delay_ms": 20})
    assert vod == AppRequest("vod", "10.1.5.1", "5", ua.vod_demand, ua.default_duration_s,
                             {"max_delay_ms": 20}, "movie")
    vm = ua.parse(ALICE, {"type": "vm", "src": "10.1.0.1", "cpu": 2, "memory_gb": 4,
                          "disk_gb": 10, "duration_s": 60})
    assert vm == AppRequest("vm", "10.1.0.1", "0", Demand(2, 4, 10), 60.0, {})
    move = ua.parse(MGR, {"type": "migration", "request": "req-1", "dst_dc": "dc4"})
    assert move == MigrationRequest("req-1", "dc4")


@pytest.mark.parametrize("user, body, kind, code, field", [
    (ALICE, {"type": "vod", "src": "10.1.0", "content": "m"}, Kind.INVALID, "invalid-field",
     "src"),
    (ALICE, {"type": "vod", "src": "10.2.0.1", "content": "m"}, Kind.INAPPLICABLE,
     "unknown-endpoint", "src"),
    (ALICE, {"type": "vod", "src": "10.1.0.1", "content": "../x"}, Kind.INVALID,
     "invalid-field", "content"),
    (ALICE, {"type": "vm", "src": "10.1.0.1", "cpu": 0, "memory_gb": 1, "disk_gb": 1},
     Kind.INVALID, "invalid-field", "cpu"),
    (ALICE, {"type": "migration", "request": "req-1"}, Kind.FORBIDDEN, "forbidden", None),
])
def test_what_the_ua_refuses_is_a_request_error_of_a_kind(lab, user, body, kind, code, field):
    err = errors(lab.service.ua.parse, user, body)
    assert (err.kind, err.code, err.facts.get("field")) == (kind, code, field)


def test_the_ua_checks_who_may_read_what(lab):
    ua = lab.service.ua
    record = ua.submit(MGR, {"type": "vod", "src": "10.1.0.1", "content": "movie"})
    assert errors(ua.get, ALICE, record.id).kind is Kind.NOT_FOUND
    assert errors(ua.list, ALICE, None, None, "mgr").kind is Kind.FORBIDDEN
    assert errors(ua.alarms, ALICE).kind is Kind.FORBIDDEN
    assert ua.get(MGR, record.id) == record


def test_the_procedure_serves_a_typed_request_without_http(lab):
    request = AppRequest("vm", "10.1.0.1", "0", Demand(2, 4, 10), 60.0, {})
    record = lab.procedure.submit(ALICE, request)
    assert (record.status, record.owner, record.cpu) == (ACTIVE, "alice", 2.0)
    lab.procedure.release(record, "done")
    err = errors(lab.procedure.release, record, "twice")
    assert (err.kind, err.code, err.facts) == (Kind.CONFLICT, "not-active", {"id": record.id})


def test_a_stratum_refusal_is_a_refused_request_error_with_its_stratum(lab):
    request = AppRequest("vm", "10.1.0.1", "0", Demand(17, 4, 10), 60.0, {})
    err = errors(lab.procedure.submit, ALICE, request)
    assert (err.kind, err.code, err.stratum, err.reason) == (
        Kind.REFUSED, "refused", "application", "no-server-fits")
    assert lab.procedure.db.find(err.facts["id"]).status == REFUSED
    lab.arae.clients["dc1"].down = True
    err = errors(lab.procedure.submit, ALICE, AppRequest("vod", "10.1.0.1", "0",
                                                         Demand(1), 60.0, {}, "movie"))
    assert (err.kind, err.stratum, err.reason) == (Kind.UNAVAILABLE, "application",
                                                   "agent-unreachable")
    assert lab.procedure.db.find(err.facts["id"]).status == FAILED


def test_the_migration_checks_its_typed_request(lab):
    migrate = lab.service.migration.migrate
    assert errors(migrate, MGR, MigrationRequest("req-9")).kind is Kind.NOT_FOUND
    vod = lab.procedure.submit(ALICE, AppRequest("vod", "10.1.0.1", "0", Demand(1), 60.0, {},
                                                 "movie"))
    assert errors(migrate, MGR, MigrationRequest(vod.id)).code == "not-migratable"
    vm = lab.procedure.submit(ALICE, AppRequest("vm", "10.1.0.1", "0", Demand(1), 60.0, {}))
    err = errors(migrate, MGR, MigrationRequest(vm.id, "dc99"))
    assert (err.kind, err.code, err.facts) == (Kind.INAPPLICABLE, "unknown-dc",
                                               {"field": "dst_dc"})
    moved = migrate(MGR, MigrationRequest(vm.id))
    assert moved.spec["to_dc"] != vm.dc == moved.spec["from_dc"]


def test_every_kind_has_one_status_and_the_body_keeps_code_reason_stratum_and_facts():
    assert set(STATUS) == set(Kind)
    err = RequestError.stratum_failed(Kind.BAD_ANSWER, "network", "install-failed", "why")
    api = api_error(err.with_facts(id="req-3"))
    assert (api.status, api.body()) == (502, {"error": "bad-gateway", "reason": "install-failed",
                                              "stratum": "network", "detail": "why",
                                              "id": "req-3"})
    api = api_error(RequestError(Kind.INAPPLICABLE, "same-dc", "already there", field="dst_dc"))
    assert (api.status, api.body()) == (422, {"error": "same-dc", "reason": "already there",
                                              "field": "dst_dc"})


def test_only_the_rest_shells_of_ac_app_import_api_error():
    importers = set()
    for path in sorted((ROOT / "ac_app").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and any(a.name == "ApiError" for a in node.names):
                importers.add(str(path.relative_to(ROOT)))
    assert importers <= {"ac_app/uai.py", "ac_app/dc_agent/api.py"}
