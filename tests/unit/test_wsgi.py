"""cso_base.wsgi: routing by path and method, JSON 404/405/500, and the eventlet server."""
import json
import urllib.error

import pytest
from webob import Request

from cso_base.rest import ApiError, json_response
from cso_base.wsgi import Server, WsgiApp, route  # first: it silences eventlet's import notice

import eventlet  # noqa: E402,I100
from eventlet.green.urllib import request as green_request  # noqa: E402


class Things:
    """A controller: one collection, one item."""

    def __init__(self):
        self.items = {"a": 1}

    @route("/v1/things", "GET")
    def list(self, req):
        return json_response(sorted(self.items))

    @route("/v1/things/{name}", "GET", "HEAD")
    def get(self, req, name):
        if name not in self.items:
            raise ApiError(404, "unknown-thing", f"no thing {name}")
        return json_response({"name": name, "value": self.items[name]})

    @route("/v1/things/{name}", "DELETE")
    def delete(self, req, name):
        raise RuntimeError("boom")


def app() -> WsgiApp:
    the_app = WsgiApp("things")
    the_app.mount(Things())
    return the_app


def call(the_app, method, path):
    resp = Request.blank(path, method=method).get_response(the_app)
    return resp.status_int, resp.headers, json.loads(resp.body) if resp.body else None


def test_routes_by_path_and_passes_path_variables():
    the_app = app()
    status, headers, body = call(the_app, "GET", "/v1/things")
    assert (status, headers["Content-Type"], body) == (200, "application/json", ["a"])
    assert call(the_app, "GET", "/v1/things/a")[2] == {"name": "a", "value": 1}
    assert call(the_app, "GET", "/v1/things/a%20b")[2]["reason"] == "no thing a b"
    assert the_app.paths() == {"/v1/things": ("GET",),
                               "/v1/things/{name}": ("DELETE", "GET", "HEAD")}


@pytest.mark.parametrize("path", ["/", "/v1", "/v1/things/", "/v1/things/a/b", "/v2/things"])
def test_unknown_path_is_a_json_404(path):
    status, headers, body = call(app(), "GET", path)
    assert status == 404
    assert headers["Content-Type"] == "application/json"
    assert body["error"] == "not-found"


@pytest.mark.parametrize("path", ["/v1/things%0A", "/v1/things/a%0A", "/v1/things%00",
                                  "/v1/things%0D"])
def test_a_path_with_a_trailing_newline_is_no_other_path(path):
    """Routes' regexes end in '$', which matches before a final newline: refused first."""
    status, headers, body = call(app(), "GET", path)
    assert status == 404
    assert headers["Content-Type"] == "application/json"
    assert body["error"] == "not-found"


def test_a_newline_inside_a_path_variable_reaches_the_handler():
    status, _headers, body = call(app(), "GET", "/v1/things/a%0Ab")
    assert (status, body["error"], body["reason"]) == (404, "unknown-thing", "no thing a\nb")


def test_known_path_other_method_is_a_json_405_listing_allowed():
    status, _headers, body = call(app(), "POST", "/v1/things/a")
    assert status == 405
    assert body["error"] == "method-not-allowed"
    assert body["allowed"] == ["DELETE", "GET", "HEAD"]


def test_handler_api_error_and_crash_are_json():
    the_app = app()
    assert call(the_app, "GET", "/v1/things/zz")[:1] == (404,)
    status, _headers, body = call(the_app, "DELETE", "/v1/things/a")
    assert (status, body["error"]) == (500, "internal")
    assert "boom" not in json.dumps(body)
    assert the_app.failures == 1


def test_routing_twice_is_refused():
    the_app = app()
    with pytest.raises(ValueError):
        the_app.add("/v1/things", "get", lambda req: None)
    with pytest.raises(ValueError):
        route("/x")


def test_server_serves_in_a_green_thread_and_stops():
    server = Server(app(), "127.0.0.1", 0).start()
    try:
        assert server.port > 0
        with green_request.urlopen(server.url + "/v1/things/a", timeout=5) as answer:
            assert json.loads(answer.read()) == {"name": "a", "value": 1}
        with pytest.raises(urllib.error.HTTPError) as info:
            green_request.urlopen(server.url + "/nope", timeout=5)
        assert info.value.code == 404
        assert json.loads(info.value.read())["error"] == "not-found"
    finally:
        server.stop()
    eventlet.sleep(0)
    with pytest.raises(OSError):
        green_request.urlopen(server.url + "/v1/things", timeout=2)
    server.stop()  # twice is harmless
