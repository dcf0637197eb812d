"""A small JSON-over-HTTP client (urllib) for the AC, the agents' clients and the lab.

Green under eventlet once the process is monkey-patched (``cso ac`` does that), so a
slow peer never blocks the other requests being served.
"""
from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional


class Unreachable(Exception):
    """The peer did not answer: refused, timed out or the name does not resolve."""


@dataclass(frozen=True)
class Answer:
    """An HTTP answer: status, headers and body."""

    status: int
    headers: Mapping[str, str] = field(repr=False)
    body: bytes = field(repr=False)

    @property
    def json(self) -> Any:
        """The body parsed as JSON (None when it is not JSON)."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None


def request(method: str, url: str, body: Any = None, token: Optional[str] = None,
            headers: Optional[Mapping[str, str]] = None, timeout: float = 10.0) -> Answer:
    """One request; ``body`` is sent as JSON unless it is bytes/str. Raises `Unreachable`."""
    data = body
    all_headers = dict(headers or {})
    if body is not None and not isinstance(body, (bytes, str)):
        data = json.dumps(body)
        all_headers.setdefault("Content-Type", "application/json")
    if isinstance(data, str):
        data = data.encode()
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
