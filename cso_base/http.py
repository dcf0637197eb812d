"""A small JSON-over-HTTP client for the AC, the agents' clients, the lab and the benchmarks.

`request` is one exchange on a connection of its own (urllib); `Connection` keeps one HTTP/1.1
connection open for a client thread and times each exchange, for the benchmarks. Both answer
with an `Answer`. Green under eventlet once the process is monkey-patched (``cso ac`` does
that), so a slow peer never blocks the other requests being served.
"""
from __future__ import annotations

import http.client
import json
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional
from urllib.parse import urlsplit

JSON = "application/json"
_NOT_PARSED = object()


class Unreachable(Exception):
    """The peer did not answer: refused, timed out or the name does not resolve."""


@dataclass(frozen=True)
class Answer:
    """An HTTP answer: status, headers, body and the seconds the exchange took.

    Status 0 is no answer at all (only from a `Connection`: `request` raises `Unreachable`);
    the body then says why, e.g. ``ConnectionRefusedError: [Errno 111] Connection refused``.
    ``seconds`` is 0 unless a `Connection` timed the exchange.
    """

    status: int
    headers: Mapping[str, str] = field(repr=False)
    body: bytes = field(repr=False)
    seconds: float = field(default=0.0, repr=False)

    @classmethod
    def unanswered(cls, why: str, seconds: float = 0.0) -> "Answer":
        """No answer (status 0), ``why`` as the body."""
        return cls(0, {}, why.encode(), seconds)

    @property
    def json(self) -> Any:
        """The body parsed as JSON (None when it is not JSON); parsed once."""
        parsed = self.__dict__.get("_json", _NOT_PARSED)
        if parsed is _NOT_PARSED:
            try:
                parsed = json.loads(self.body)
            except ValueError:
                parsed = None
            object.__setattr__(self, "_json", parsed)  # a cache, not a field
        return parsed

    @property
    def text(self) -> str:
        """The body as text (undecodable bytes replaced)."""
        return self.body.decode("utf-8", "replace")

    def why(self) -> str:
        """``status error: reason`` of a refusal, for counting refusals by cause."""
        if self.status == 0:
            return f"no answer: {self.text}"
        data = self.json
        if isinstance(data, dict):
            return f"{self.status} {data.get('error', '?')}: {data.get('reason', '')}"
        return f"{self.status}: {str(self.text if data is None else data)[:80]}"


def _encode(body: Any, headers: dict[str, str]) -> Optional[bytes]:
    """``body`` as bytes: JSON unless it is bytes/str (then the JSON Content-Type is set)."""
    if body is None:
        return None
    if not isinstance(body, (bytes, str)):
        body = json.dumps(body)
        headers.setdefault("Content-Type", JSON)
    return body.encode() if isinstance(body, str) else body


def request(method: str, url: str, body: Any = None, token: Optional[str] = None,
            headers: Optional[Mapping[str, str]] = None, timeout: float = 10.0) -> Answer:
    """One request; ``body`` is sent as JSON unless it is bytes/str. Raises `Unreachable`."""
    all_headers = dict(headers or {})
    data = _encode(body, all_headers)
    if token:
        all_headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=data, method=method, headers=all_headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as answer:
            return Answer(answer.status, dict(answer.headers), answer.read())
    except urllib.error.HTTPError as answer:
        with answer:
            return Answer(answer.code, dict(answer.headers), answer.read())
    except (urllib.error.URLError, socket.timeout, ConnectionError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise Unreachable(f"{method} {url}: {reason}") from None


class Connection:
    """One kept-alive HTTP/1.1 connection to a server, for one client thread.

    Called like `request` (a full URL of this server or just the path) and interchangeable
    with it as a client's ``send``, except that no answer is an `Answer` with status 0 (the
    benchmarks count those too): never retried, since a POST may have been served, and the
    connection is reopened by the next call. ``seconds`` is request sent -> body read; JSON
    encoding and parsing are outside it.
    """

    def __init__(self, base_url: str, token: Optional[str] = None, timeout: float = 10.0):
        self.base_url = base_url.rstrip("/")
        parts = urlsplit(self.base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"not an http:// URL: {base_url!r}")
        self.host, self.port = parts.hostname, parts.port or 80
        self.token = token
        self.timeout = timeout
        self.conn: Optional[http.client.HTTPConnection] = None
        self._headers = {token: self._make_headers(token)}

    @staticmethod
    def _make_headers(token: Optional[str]) -> dict[str, str]:
        headers = {"Content-Type": JSON}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return headers

    def request(self, method: str, url: str, body: Any = None, token: Optional[str] = None,
                headers: Optional[Mapping[str, str]] = None,
                timeout: Optional[float] = None) -> Answer:
        """One exchange; ``token`` defaults to the connection's, ``timeout`` (seconds) applies
        from the next (re)connection."""
        path = url[len(self.base_url):] if url.startswith(self.base_url) else url
        token = self.token if token is None else token
        all_headers = self._headers.get(token) or self._headers.setdefault(
            token, self._make_headers(token))
        if headers:
            all_headers = {**all_headers, **headers}
        data = None if body is None else _encode(body, {})
        if timeout is not None:
            self.timeout = timeout
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        start = time.perf_counter()
        try:
            self.conn.request(method, path, body=data, headers=all_headers)
            resp = self.conn.getresponse()
            raw = resp.read()
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            return Answer.unanswered(f"{type(exc).__name__}: {exc}", time.perf_counter() - start)
        seconds = time.perf_counter() - start
        return Answer(resp.status, resp.headers, raw, seconds)  # a Mapping already: no copy

    __call__ = request

    def close(self) -> None:
        """Close the connection (the next call opens a new one)."""
        if self.conn is not None:
            self.conn.close()
            self.conn = None
