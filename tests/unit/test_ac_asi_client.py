"""The AC's ASI client against the real SC (in process), odd answers, and the network view."""
import socket

import pytest

from ac_app.asi_client import LIGHTPATHS, AsiClient, AsiError, AsiNetworkView, AsiUnreachable
from cso.simulation.network import PceNetworkView
from ac_harness import AC_TOKEN, WsgiTransport, sc  # noqa: F401 (fixture)
from cso_base import http
from sc_app.pce import Constraints
from sc_harness import state_dir  # noqa: F401 (fixture)


@pytest.fixture
def asi(sc):
    return AsiClient("http://sc.test:8080/", AC_TOKEN, 3.0, send=WsgiTransport(sc.wsgi))


def test_establish_then_teardown(sc, asi):
    lp = asi.establish("10.1.0.1", "10.2.7.2", "vm", label="req-1",
                       constraints={"max_hops": 2, "bandwidth_gbps": None})
    assert (lp["route"], lp["hops"], lp["service_type"]) == (["0", "7"], 1, "vm")
    assert lp["constraints"] == {"max_hops": 2}
    assert sc.core.service.lightpaths[lp["id"]].dst == "10.2.7.2"
    assert asi.teardown(lp["id"])["state"] == "deleted"
    assert asi.teardown(lp["id"]) is None  # already gone: not an error
    assert sc.core.service.lightpaths == {}


def test_establish_to_a_vm_attached_at_another_dc_node(sc, asi):
    lp = asi.establish("10.1.0.1", "10.2.7.2", "vm", dst_node="9")
    assert lp["route"][-1] == "9" and lp["dst_endpoint"]["node"] == "9"
    with pytest.raises(AsiError) as err:
        asi.establish("10.1.1.1", "10.2.7.3", "vm", dst_node="8")  # node 8 has no DC
    assert (err.value.status, err.value.code) == (422, "invalid-attachment")


def test_sc_refusals_keep_the_scs_code_reason_and_detail(asi):
    with pytest.raises(AsiError) as err:
        asi.establish("10.1.13.1", "10.2.1.2", "vod", constraints={"max_hops": 1})
    assert (err.value.status, err.value.code, err.value.reason) == (409, "no-path",
                                                                    "hops-exceeded")
    assert err.value.detail
    with pytest.raises(AsiError) as err:
        asi.establish("10.1.0.1", "10.2.2.2", "vod")  # node 2 has no DC
    assert (err.value.status, err.value.code) == (422, "unknown-endpoint")
    asi.token = "wrong"
    with pytest.raises(AsiError) as err:
        asi.evaluate("0", ["1"])
    assert (err.value.status, err.value.code) == (401, "unauthorized")


def test_an_sc_that_does_not_answer_is_unreachable():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again when the block ends: nobody listens
    client = AsiClient(f"http://127.0.0.1:{port}", AC_TOKEN, 1.0)
    with pytest.raises(AsiUnreachable):
        client.evaluate("0", ["1"])


def test_over_a_kept_alive_connection_no_answer_is_unreachable_too():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    connection = http.Connection(url, AC_TOKEN, 1.0)
    client = AsiClient(url, AC_TOKEN, 1.0, send=connection)
    assert client.post_lightpath("10.1.0.1", "10.2.1.2", "vod").status == 0  # as it came
    with pytest.raises(AsiUnreachable):
        client.establish("10.1.0.1", "10.2.1.2", "vod")
    client.close()
    assert connection.conn is None


def test_the_raw_answers_are_what_establish_and_teardown_read(asi):
    made = asi.post_lightpath("10.1.0.1", "10.2.7.2", "vod", constraints={"max_hops": 3})
    assert made.status == 201 and made.json["constraints"] == {"max_hops": 3}
    refused = asi.post_lightpath("10.1.13.1", "10.2.1.2", "vod", constraints={"max_hops": 1})
    assert refused.status == 409 and refused.why().startswith("409 no-path: hops-exceeded")
    assert asi.delete_lightpath(made.json["id"]).status == 200
    assert asi.delete_lightpath(made.json["id"]).status == 404
    assert asi.call("GET", LIGHTPATHS)["lightpaths"] == []


def answering(status, raw):
    """A `cso_base.http.request` stand-in that answers ``raw`` with ``status`` to anything."""
    def send(method, url, body=None, **_kwargs):
        return http.Answer(status, {"Content-Type": "application/json"}, raw)
    return send


@pytest.mark.parametrize("status, body, code", [
    (502, b"<html>Bad Gateway</html>", "http-error"),
    (500, b'{"reason": "no code"}', "http-error"),
    (200, b"[1, 2]", "bad-answer"),
    (200, b"not json", "bad-answer"),
    (503, b'{"error": "install-failed", "reason": "switch-unreachable", "detail": "dpid 2"}',
     "install-failed"),
])
def test_odd_answers_are_asi_errors(status, body, code):
    client = AsiClient("http://sc", AC_TOKEN, send=answering(status, body))
    with pytest.raises(AsiError) as err:
        client.evaluate("0", ["1"])
    assert (err.value.status, err.value.code) == (status, code)


def test_a_lightpath_answer_without_its_route_is_a_bad_answer():
    client = AsiClient("http://sc", AC_TOKEN, send=answering(201, b'{"id": "lp-1"}'))
    with pytest.raises(AsiError) as err:
        client.establish("10.1.0.1", "10.2.1.2", "vod")
    assert err.value.code == "bad-answer"


def test_the_asi_view_matches_the_pce_view_and_carries_the_constraints(sc, asi):
    asi.establish("10.1.0.1", "10.2.7.2", "vod")
    asi.establish("10.1.3.1", "10.2.4.2", "vod")
    dsts = ["1", "4", "7", "9", "12"]
    assert AsiNetworkView(asi).evaluate("0", dsts) == \
        PceNetworkView(sc.core.pce).evaluate("0", dsts)
    limited = AsiNetworkView(asi, {"max_hops": 2}).evaluate("0", dsts)
    assert limited == PceNetworkView(sc.core.pce, Constraints(max_hops=2)).evaluate("0", dsts)
    assert [d for d, info in limited.items() if not info.feasible] == ["4", "9", "12"]
    assert {info.reason for info in limited.values() if not info.feasible} == {"hops-exceeded"}


@pytest.mark.parametrize("body", [
    b'{"results": [{"dst": "1", "feasible": true}]}',
    b'{"results": "none"}',
    b'{"answers": []}',
    b'{"results": []}',
])
def test_a_malformed_evaluation_is_a_bad_answer(body):
    view = AsiNetworkView(AsiClient("http://sc", AC_TOKEN, send=answering(200, body)))
    with pytest.raises(AsiError) as err:
        view.evaluate("0", ["1"])
    assert err.value.code == "bad-answer"
