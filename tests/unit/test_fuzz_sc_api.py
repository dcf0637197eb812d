"""Hostile input for the SC's REST interfaces (ASI, SMI, ALTO), fuzzed from docs/openapi-sc.yaml.

schemathesis generates requests for every operation of the spec, valid ones (positive) and
ones that break the spec (negative: wrong types, missing fields, unknown enum values, bad
path parameters ...), and sends them in process through Ryu's router to an SC on fake
switches (``sc_harness.make_sc``). Every answer must be no 5xx, a documented status with a
documented Content-Type and a body that follows its schema; a negative request must be
refused with a 4xx. One SC serves the whole module, so state accumulates (lightpaths set up,
links taken down, TE weights changed) and, after every request, the TED, the SA and the DBM
must still agree: no wavelength held without a lightpath, none with its wavelength missing.

Bounded and repeatable for CI: ``EXAMPLES`` cases per operation and mode, derandomized, no
example database, no shrinking. Streams are closed at once (``max_seconds`` <= 0.05).

Findings (docs/reliability.md, "Hostile input") have tests of their own with the minimal
request: fixed ones keep them fixed.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from collections import Counter
from typing import Any, Optional

import pytest
import schemathesis
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from schemathesis import GenerationMode

from sc_app.lightpath import LIGHTPATH_COOKIE_TAG, LIGHTPATH_COOKIE_TAG_MASK
from sc_harness import TOKENS, make_sc
import fuzz_check
from fuzz_check import CHECKS, check_answer, fuzz_settings, op_id

SPEC_FILE = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "openapi-sc.yaml")
SCHEMA = schemathesis.openapi.from_path(SPEC_FILE)
NOC = "noc-token"
#: Generated cases per operation and generation mode.
EXAMPLES = 25
FUZZ = fuzz_settings(EXAMPLES)
#: Operations whose answer is an event stream (text/event-stream): bounded by ``max_seconds``.
STREAMS = {"/asi/v1/events", "/alto/updates"}
#: (METHOD, path, status) -> answers seen by the fuzz.
STATUSES: Counter[tuple[str, str, int]] = Counter()
#: The six-node ring of ``make_sc``: its fibres, switches and hosts.
LINK_IDS = ["0-1", "1-2", "2-3", "3-4", "4-5", "5-0"]
DPIDS = [str(n) for n in range(1, 7)] + ["0", "7", "18446744073709551615"]
ENDPOINTS = ([str(n) for n in range(6)] + [f"10.1.{n}.1" for n in range(6)]
             + [f"10.2.{n}.{h}" for n in (0, 3) for h in (1, 2, 3)] + ["10.2.1.1", "10.9.9.9"])


def operations() -> list[Any]:
    """Every operation of the spec, in the spec's order."""
    return fuzz_check.operations(SCHEMA)


def has_input(op: Any) -> bool:
    """True when the operation takes parameters or a body (something to break)."""
    return fuzz_check.has_input(SCHEMA, op)


def token_for(path: str) -> st.SearchStrategy[str]:
    """Valid credentials for the operation: an operator's on SMI, either AC's elsewhere."""
    if path.startswith(("/smi/", "/metrics")):
        return st.just(NOC)
    return st.sampled_from(sorted(TOKENS.values()))


def lightpath_bodies() -> st.SearchStrategy[dict[str, Any]]:
    """Lightpath requests between real endpoints of the ring, with optional constraints."""
    return st.fixed_dictionaries(
        {"src": st.sampled_from(ENDPOINTS), "dst": st.sampled_from(ENDPOINTS)},
        optional={"service_type": st.sampled_from(["generic", "vod", "vm"]),
                  "bandwidth_gbps": st.integers(1, 100),
                  "max_hops": st.integers(1, 6),
                  "exclude_links": st.lists(st.sampled_from(LINK_IDS), max_size=2, unique=True),
                  "label": st.text(min_size=1, max_size=16)})


def seeded(op: Any, mode: GenerationMode) -> list[st.SearchStrategy[Any]]:
    """Strategies that put real ids and endpoints into the generated requests, so the fuzz
    reaches the handlers behind the "no such link" and "unknown endpoint" answers too."""
    names = {p.name for p in op.path_parameters}
    found = []
    if "link_id" in names:
        found.append(st.sampled_from(LINK_IDS).flatmap(
            lambda link: op.as_strategy(mode, path_parameters={"link_id": link})))
    if "dpid" in names:
        found.append(st.sampled_from(DPIDS).flatmap(
            lambda dpid: op.as_strategy(mode, path_parameters={"dpid": dpid})))
    if op_id(op) == "POST /asi/v1/lightpaths" and mode is GenerationMode.POSITIVE:
        found.append(lightpath_bodies().flatmap(lambda body: op.as_strategy(mode, body=body)))
    if op_id(op) == "POST /asi/v1/evaluate" and mode is GenerationMode.POSITIVE:
        found.append(st.fixed_dictionaries({
            "src": st.sampled_from(ENDPOINTS),
            "dsts": st.lists(st.sampled_from(ENDPOINTS), min_size=1, max_size=4)}).flatmap(
                lambda body: op.as_strategy(mode, body=body)))
    return found


def bound_stream(case: Any) -> None:
    """Close a stream at once: ``max_seconds`` left only when the SC refuses it or it is tiny."""
    query = dict(case.query or {})
    value = query.get("max_seconds")
    if isinstance(value, str):
        try:
            seconds: Optional[float] = float(value)
        except ValueError:
            return  # refused with 400 before any streaming
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        seconds = None  # absent, or a list/object: replaced
    if seconds is None or not seconds <= 0.05:  # NaN and inf included
        query["max_seconds"] = 0
        case.query = query


# -- invariants -------------------------------------------------------------------------------

def check_invariants(sc: Any) -> None:
    """TED, SA and DBM agree: every held wavelength is a lightpath's, every lightpath holds its."""
    core = sc.core
    lightpaths = core.service.lightpaths
    for link in core.ted.snapshot()["links"]:
        for wavelength, owner in link["owners"].items():
            lp = lightpaths.get(owner)
            assert lp is not None, f"λ{wavelength} on {link['id']} held by {owner}: no lightpath"
            assert lp.wavelength == int(wavelength) and link["id"] in lp.links, \
                (link["id"], wavelength, lp.to_json())
    for lp in lightpaths.values():
        for link_id in lp.links:
            assert core.ted.owner(link_id, lp.wavelength) == lp.id, (lp.id, link_id)
    stored = {lp.id: lp.wavelength for lp in core.db.list_lightpaths()}
    assert stored == {lp_id: lp.wavelength for lp_id, lp in lightpaths.items()}
    cookies = {lp.cookie for lp in lightpaths.values()}
    for dpid, table in sc.net.tables.items():
        for entry in table.entries:
            tagged = entry.cookie & LIGHTPATH_COOKIE_TAG_MASK == LIGHTPATH_COOKIE_TAG
            assert not tagged or entry.cookie in cookies, \
                f"switch {dpid}: orphan entry with cookie {entry.cookie:#x}"


# -- the fuzz ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sc(tmp_path_factory: Any) -> Any:
    """One SC for the module (state accumulates), with an operator token for SMI."""
    instance = make_sc(str(tmp_path_factory.mktemp("fuzz-sc")), smi_tokens={"noc": NOC})
    yield instance
    instance.close()


def fuzz(sc: Any, op: Any, mode: GenerationMode) -> None:
    """Send EXAMPLES generated requests for ``op``; check every answer and the invariants."""
    strategy = st.one_of(op.as_strategy(mode), *seeded(op, mode))

    @FUZZ
    @given(data=st.data())
    def run(data: Any) -> None:
        case = data.draw(strategy, label="case")
        if op.path in STREAMS:
            bound_stream(case)
        token = data.draw(token_for(op.path), label="token")
        response = case.call(app=sc.wsgi, headers={"Authorization": f"Bearer {token}"})
        check_answer(case, response, mode, STATUSES)
        check_invariants(sc)

    run()


@pytest.mark.parametrize("op", operations(), ids=op_id)
def test_valid_requests_get_documented_answers(sc: Any, op: Any) -> None:
    fuzz(sc, op, GenerationMode.POSITIVE)


@pytest.mark.parametrize("op", [op for op in operations() if has_input(op)], ids=op_id)
def test_invalid_requests_are_refused_with_a_documented_4xx(sc: Any, op: Any) -> None:
    fuzz(sc, op, GenerationMode.NEGATIVE)


def test_the_fuzz_reached_the_handlers() -> None:
    """The seeds worked: lightpaths were set up, links and switches found."""
    fuzzed = {(method, path) for method, path, _status in STATUSES}
    for method, path, status in [
            ("POST", "/asi/v1/lightpaths", 201),
            ("PUT", "/smi/v1/links/{link_id}/admin", 200),
            ("POST", "/smi/v1/switches/{dpid}/resync", 200),
    ]:
        assert (method, path) not in fuzzed or STATUSES[method, path, status], \
            (method, path, status, STATUSES)


BAD_CREDENTIALS = [None, "", "Bearer", "Bearer ", "Basic dG9rZW4tYWMxOg==", "Bearer token-ac",
                   "Bearer token-ac1x", "Bearer " + "x" * 4096, "bearer\ttoken-ac1",
                   "Bearer token-ac1 token-ac2"]


@pytest.mark.parametrize("op", [op for op in operations() if op.path != "/metrics"], ids=op_id)
def test_wrong_credentials_are_refused_with_401(sc: Any, op: Any) -> None:
    """No token, a malformed one, an unknown one, or an AC's token on SMI: 401, nothing done."""
    wrong = BAD_CREDENTIALS + (["Bearer token-ac1"] if op.path.startswith("/smi/") else [])

    @settings(FUZZ, max_examples=5)
    @given(case=op.as_strategy(), header=st.sampled_from(wrong))
    def run(case: Any, header: Optional[str]) -> None:
        if op.path in STREAMS:
            bound_stream(case)
        before = sc.state()
        headers = {} if header is None else {"Authorization": header}
        case.headers = {k: v for k, v in (case.headers or {}).items()
                        if k.lower() != "authorization"}
        response = case.call(app=sc.wsgi, headers=headers)
        assert response.status_code == 401, (header, response.status_code, response.text)
        case.validate_response(response, checks=CHECKS)
        assert sc.state() == before

    run()


# -- findings, each with its minimal request --------------------------------------------------

def test_finding_newline_in_path_gets_a_json_404(sc: Any) -> None:
    noc = sc.client(None, token=NOC)
    for path in ("/smi/v1/switches/1%0A/resync", "/asi/v1/x%0Ay"):
        reply = noc.post(path) if "smi" in path else sc.client("ac1").get(path)
        assert reply.status == 404
        assert reply.content_type == "application/json", (path, reply.body)


def test_finding_unknown_cost_map_404_is_documented(sc: Any) -> None:
    reply = sc.client("ac1").get("/alto/costmap/nope")
    assert reply.status == 404
    responses = SCHEMA.raw_schema["paths"]["/alto/costmap/{map_id}"]["get"]["responses"]
    assert "404" in responses


@pytest.mark.parametrize("value", ["-1", "nan", "inf"])
def test_finding_events_max_seconds_is_checked(sc: Any, value: str) -> None:
    if value == "inf":  # do not open an endless stream: the check is the same as for -1
        value = "-inf"
    reply = sc.client("ac1").get(f"/asi/v1/events?max_seconds={value}")
    assert reply.status == 400, reply.body


def test_finding_trailing_newline_is_another_path(sc: Any) -> None:
    """Finding 4 (fixed): Routes' '$' also matches before a final newline; now a JSON 404."""
    for path, client in (("/asi/v1/lightpaths%0A", sc.client("ac1")),
                         ("/smi/v1/links/0-1%0A", sc.client(None, token=NOC)),
                         ("/alto/networkmap%0A", sc.client("ac1")),
                         ("/asi/v1/lightpaths%00", sc.client("ac1"))):
        reply = client.get(path)
        assert reply.status == 404, (path, reply.status)
        assert reply.content_type == "application/json", (path, reply.body)
        assert reply.json["error"] == "not-found", reply.json


def test_finding_cost_context_without_its_source_is_refused(sc: Any) -> None:
    """Finding 5 (fixed): a cost-context without cost-source (required by the spec) was
    taken as any source and answered 200."""
    body = {"cost-type": {"cost-context": {"": None}, "cost-metric": "delay-ow",
                          "cost-mode": "ordinal"}}
    reply = sc.client("ac1").post("/alto/costmap/filtered", body,
                                  content_type="application/alto-costmapfilter+json")
    assert reply.status == 400, reply.body
    assert reply.json["meta"]["code"] == "E_MISSING_FIELD"


# -- stateful: lightpaths, links and TE weights in any order ----------------------------------

class LightpathMachine(RuleBasedStateMachine):
    """ACs set up and tear down lightpaths while an operator takes fibres down and up and
    changes TE weights; after every step the TED, the SA, the DBM and the flow tables agree."""

    def __init__(self) -> None:
        super().__init__()
        shm = "/dev/shm"
        base = shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None
        self.dir = tempfile.mkdtemp(prefix="cso-fuzz-sc-", dir=base)
        self.sc = make_sc(self.dir, smi_tokens={"noc": NOC})
        self.noc = self.sc.client(None, token=NOC)
        self.acs = {ac: self.sc.client(ac) for ac in TOKENS}

    def teardown(self) -> None:
        self.sc.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    @rule(ac=st.sampled_from(sorted(TOKENS)), body=lightpath_bodies())
    def set_up(self, ac: str, body: dict[str, Any]) -> None:
        reply = self.acs[ac].post("/asi/v1/lightpaths", body)
        assert reply.status in (201, 400, 409, 422), (body, reply.status, reply.body)

    @rule(ac=st.sampled_from(sorted(TOKENS)), pick=st.integers(0, 50))
    def tear_down(self, ac: str, pick: int) -> None:
        ids = sorted(self.sc.core.service.lightpaths)
        lp_id = ids[pick % len(ids)] if ids else "lp-1"
        reply = self.acs[ac].delete(f"/asi/v1/lightpaths/{lp_id}")
        assert reply.status in (200, 204, 404), (lp_id, reply.status, reply.body)

    @rule(link=st.sampled_from(LINK_IDS), state=st.sampled_from(["down", "up"]))
    def admin(self, link: str, state: str) -> None:
        reply = self.noc.put(f"/smi/v1/links/{link}/admin", {"state": state})
        assert reply.status < 500, reply.body

    @rule(link=st.sampled_from(LINK_IDS), weight=st.one_of(st.none(), st.integers(1, 100)))
    def te_weight(self, link: str, weight: Optional[int]) -> None:
        reply = self.noc.put(f"/smi/v1/links/{link}/te-weight", {"te_weight": weight})
        assert reply.status < 500, reply.body

    @rule(node=st.sampled_from(["0", "1", "2", "3", "4", "5"]))
    def resync(self, node: str) -> None:
        reply = self.noc.post(f"/smi/v1/switches/{self.sc.dpid(node)}/resync")
        assert reply.status < 500, reply.body

    @invariant()
    def agree(self) -> None:
        check_invariants(self.sc)


TestLightpathMachine = LightpathMachine.TestCase
TestLightpathMachine.settings = settings(fuzz_settings(15), stateful_step_count=10)
