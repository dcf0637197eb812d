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
