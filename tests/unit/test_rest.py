"""The shared REST plumbing: bodies, validation, tokens, error mapping."""
import json

import pytest
from webob import Request

from cso_base.rest import (ApiError, Field, MAX_BODY_BYTES, authenticate, handles_errors, json_body,
                           query_params, validate)


def post(body: bytes, ctype: str = "application/json") -> Request:
    req = Request.blank("/x", method="POST", body=body)
    req.content_type = ctype
    return req


def err(func, *args):
    with pytest.raises(ApiError) as info:
        func(*args)
    return info.value


def test_json_body_accepts_object():
    assert json_body(post(b'{"a": 1}')) == {"a": 1}


@pytest.mark.parametrize("raw, code", [
    (b"{", "bad-json"), (b"[1]", "bad-json"), (b'{"a": NaN}', "bad-json"),
    (b'{"a": 1, "a": 2}', "bad-json"), (b"\xff\xfe", "bad-json"), (b"", "missing-body"),
    (b"[" * 50000, "bad-json"),
])
def test_json_body_rejects(raw, code):
    e = err(json_body, post(raw))
    assert (e.status, e.code) == (400, code)


def test_json_body_rejects_content_type_and_size():
    assert err(json_body, post(b'{"a":1}', "text/plain")).status == 415
    assert err(json_body, post(b" " * (MAX_BODY_BYTES + 1))).status == 413


SCHEMA = {"src": Field("str", required=True), "n": Field("int", minimum=1, maximum=10),
          "x": Field("number"), "f": Field("bool"), "l": Field("list[str]"),
          "c": Field("str", choices=("a", "b"))}


def test_validate_accepts_and_drops_nulls():
    assert validate({"src": "0", "n": 3, "x": 1.5, "f": True, "l": ["a"], "c": None},
                    SCHEMA) == {"src": "0", "n": 3, "x": 1.5, "f": True, "l": ["a"]}


@pytest.mark.parametrize("body, code, field", [
    ({}, "missing-field", "src"), ({"src": "0", "zz": 1}, "unknown-field", "zz"),
    ({"src": 3}, "invalid-field", "src"), ({"src": ""}, "invalid-field", "src"),
    ({"src": "0", "n": True}, "invalid-field", "n"), ({"src": "0", "n": 1.5}, "invalid-field", "n"),
    ({"src": "0", "n": 0}, "invalid-field", "n"), ({"src": "0", "n": 11}, "invalid-field", "n"),
    ({"src": "0", "x": 10 ** 30}, "invalid-field", "x"),
    ({"src": "0", "f": 1}, "invalid-field", "f"),
    ({"src": "0", "l": "a"}, "invalid-field", "l"), ({"src": "0", "l": [1]}, "invalid-field", "l"),
    ({"src": "0", "c": "z"}, "invalid-field", "c"),
])
def test_validate_rejects(body, code, field):
    e = err(validate, body, SCHEMA)
    assert (e.status, e.code, e.extra["field"]) == (400, code, field)


def test_authenticate():
    tokens = {"ac1": "secret-1", "ac2": "secret-2"}
    req = Request.blank("/", headers={"Authorization": "Bearer secret-2"})
    assert authenticate(req, tokens) == "ac2"
    assert err(authenticate, Request.blank("/"), tokens).status == 401
    bad = Request.blank("/", headers={"Authorization": "Bearer secret"})
    assert err(authenticate, bad, tokens).code == "unauthorized"
    basic = Request.blank("/", headers={"Authorization": "Basic secret-1"})
    assert err(authenticate, basic, tokens).status == 401


def test_query_params():
    assert query_params(Request.blank("/?view=full"), ["view"]) == {"view": "full"}
    assert err(query_params, Request.blank("/?x=1"), ["view"]).code == "unknown-parameter"
    assert err(query_params, Request.blank("/?view=a&view=b"), ["view"]).status == 400


class Handler:
    failures: list = []

    def on_handler_failure(self, name):
        self.failures.append(name)

    @handles_errors
    def ok(self, req):
        raise ApiError(404, "not-found", "no such thing")

    @handles_errors
    def boom(self, req):
        raise RuntimeError("secret detail")


def test_handles_errors_maps_to_json():
    h = Handler()
    resp = h.ok(Request.blank("/"))
    assert resp.status_int == 404
    assert resp.headers["Content-Type"] == "application/json"
    assert json.loads(resp.body) == {"error": "not-found", "reason": "no such thing"}
    resp = h.boom(Request.blank("/"))
    assert resp.status_int == 500 and b"secret detail" not in resp.body
    assert h.failures == ["boom"]
