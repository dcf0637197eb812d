"""The JSON HTTP client against a real local server."""
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from cso_base import http


class Echo(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        out = json.dumps({"got": json.loads(body), "auth": self.headers.get("Authorization")})
        self.send_response(201 if self.path == "/ok" else 404)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(out.encode())

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    srv = HTTPServer(("127.0.0.1", 0), Echo)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_port}"
    srv.shutdown()


def test_json_round_trip_and_error_status(server):
    answer = http.request("POST", server + "/ok", {"a": 1}, token="t")
    assert answer.status == 201 and answer.json == {"got": {"a": 1}, "auth": "Bearer t"}
    assert http.request("POST", server + "/nope", {"a": 2}).status == 404


def test_unreachable():
    with pytest.raises(http.Unreachable):
        http.request("GET", "http://127.0.0.1:9/", timeout=1)


def test_a_connection_is_called_like_request_and_times_its_answers(server):
    conn = http.Connection(server, token="t", timeout=2.0)
    answer = conn("POST", server + "/ok", {"a": 1})  # called as a `send`, with a full URL
    assert answer.status == 201 and answer.json == {"got": {"a": 1}, "auth": "Bearer t"}
    assert answer.seconds > 0 and answer.headers["Content-Type"] == "application/json"
    other = conn.request("POST", "/ok", {"b": 2}, token="u")  # a path, another token
    assert other.json == {"got": {"b": 2}, "auth": "Bearer u"}
    assert conn.request("POST", "/nope", {"a": 2}).status == 404
    conn.close()


def test_a_connection_answers_status_0_when_nobody_answers_and_reopens():
    conn = http.Connection("http://127.0.0.1:9", timeout=1.0)
    answer = conn.request("GET", "/x")
    assert answer.status == 0 and answer.seconds >= 0 and conn.conn is None
    assert answer.why().startswith("no answer: ConnectionRefusedError")
    assert conn.request("GET", "/x").status == 0  # tried again, not stuck
    with pytest.raises(ValueError):
        http.Connection("https://sc.test")


@pytest.mark.parametrize("answer, why", [
    (http.Answer(409, {}, b'{"error": "no-path", "reason": "no-wavelength"}'),
     "409 no-path: no-wavelength"),
    (http.Answer(502, {}, b"<html>Bad Gateway</html>"), "502: <html>Bad Gateway</html>"),
    (http.Answer(500, {}, b"[1, 2]"), "500: [1, 2]"),
    (http.Answer.unanswered("TimeoutError: timed out", 10.0), "no answer: TimeoutError: timed out"),
])
def test_why_an_answer_is_not_a_success(answer, why):
    assert answer.why() == why


def test_the_body_is_parsed_once_and_none_when_not_json():
    answer = http.Answer(200, {}, b'{"a": [1]}')
    assert answer.json is answer.json == {"a": [1]}
    assert http.Answer(200, {}, b"not json").json is None
    assert http.Answer(200, {}, b"\xff").text == "\ufffd"
