"""Bodies every JSON interface refuses before it reads a field (`cso_base.rest.json_body`).

`FRAMING` maps a case to (keyword arguments of a harness client's ``request``, the status, the
error code or None when the interfaces differ); the ASI and UAI tests post each to their
resource, and the bodies are objects either of them could have been sent.
"""
from __future__ import annotations

from typing import Any

from cso_base.rest import MAX_BODY_BYTES


def raw(data: bytes, ctype: str = "application/json") -> dict[str, Any]:
    """Keyword arguments that send ``data`` as is, with the Content-Type ``ctype``."""
    return {"raw": data, "content_type": ctype}


FRAMING = {
    "truncated": (raw(b'{"src": "0", "dst": '), 400, "bad-json"),
    "not-json": (raw(b"src=0&dst=3"), 400, "bad-json"),
    "trailing-comma": (raw(b'{"src": "0", "dst": "3",}'), 400, "bad-json"),
    "single-quotes": (raw(b"{'src': '0', 'dst': '3'}"), 400, "bad-json"),
    "nan": (raw(b'{"src": "0", "dst": "3", "bandwidth_gbps": NaN}'), 400, "bad-json"),
    "infinity": (raw(b'{"src": "0", "dst": "3", "max_delay_ms": -Infinity}'), 400, "bad-json"),
    "duplicate-key": (raw(b'{"src": "0", "dst": "3", "dst": "4"}'), 400, "bad-json"),
    "not-utf8": (raw(b'{"src": "\xff\xfe", "dst": "3"}'), 400, "bad-json"),
    "deep-nesting": (raw(b'{"src": ' + b"[" * 100000 + b"]" * 100000 + b"}"), 413, "too-large"),
    # Parsed (nesting within the limit), then refused for its fields.
    "nested-within-limit": (raw(b'{"src": ' + b"[" * 20000 + b"]" * 20000 + b"}"), 400, None),
    "empty": (raw(b""), 400, "missing-body"),
    "whitespace": (raw(b"  \n "), 400, "missing-body"),
    "array": (raw(b'[{"src": "0", "dst": "3"}]'), 400, "bad-json"),
    "string": (raw(b'"0 to 3"'), 400, "bad-json"),
    "number": (raw(b"42"), 400, "bad-json"),
    "null": (raw(b"null"), 400, "bad-json"),
    "text-plain": (raw(b'{"src": "0", "dst": "3"}', "text/plain"), 415, "unsupported-media-type"),
    "form": (raw(b"src=0&dst=3", "application/x-www-form-urlencoded"), 415,
             "unsupported-media-type"),
    "xml": (raw(b"<lightpath src='0' dst='3'/>", "application/xml"), 415,
            "unsupported-media-type"),
    "oversized": (raw(b'{"label": "' + b"x" * MAX_BODY_BYTES + b'"}'), 413, "too-large"),
}
