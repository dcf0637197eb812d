"""JSON REST plumbing shared by every interface (ASI, SMI, UAI, ...).

One place parses bodies, validates fields, checks bearer tokens and maps every
failure to a JSON error with the right status, so no handler answers a bare
500 or echoes a stack trace. Framework-neutral: works on WebOb requests, which
both Ryu's wsgi (SC) and the AC's eventlet.wsgi service hand to handlers.
"""
from __future__ import annotations

import functools
import hmac
import json
import logging
import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Optional

from webob import Request, Response

from cso_base.errors import CodedError

LOG = logging.getLogger(__name__)

#: Bodies larger than this are refused (413) before parsing.
MAX_BODY_BYTES = 64 * 1024
#: Integers beyond this are refused: JSON allows any size, the data plane does not.
MAX_INT = 2 ** 53


class ApiError(CodedError):
    """An error answered to the client as ``{"error": code, "reason": text, ...}``."""

    def __init__(self, status: int, code: str, reason: str, **extra: Any):
        super().__init__(status, code, reason)
        self.status = status
        self.extra = extra

    def body(self) -> dict[str, Any]:
        """The JSON error body."""
        return {"error": self.code, "reason": self.reason, **self.extra}


def json_response(obj: Any, status: int = 200, headers: Optional[Mapping[str, str]] = None,
                  content_type: str = "application/json") -> Response:
    """A JSON response (UTF-8, compact, newline-terminated)."""
    text = json.dumps(obj, separators=(",", ":"), sort_keys=False) + "\n"
    resp = Response(status=status, body=text.encode("utf-8"))
    # Set the header directly: WebOb would append "; charset=UTF-8", which
    # media types like ALTO's must not carry.
    resp.headers["Content-Type"] = content_type
    for name, value in (headers or {}).items():
        resp.headers[name] = value
    return resp


def error_response(err: ApiError) -> Response:
    """The JSON response for an ApiError."""
    headers = {}
    if err.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="cso"'
    return json_response(err.body(), err.status, headers)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def parse_json(raw: bytes) -> Any:
    """Strict JSON: UTF-8, no NaN/Infinity, no duplicate keys; ApiError 400 otherwise."""
    try:
        text = raw.decode("utf-8")
        return json.loads(text, parse_constant=_reject_constant,
                          object_pairs_hook=_no_duplicates)
    except UnicodeDecodeError as exc:
        raise ApiError(400, "bad-json", f"body is not UTF-8: {exc.reason}") from None
    except RecursionError:
        raise ApiError(400, "bad-json", "body is nested too deeply") from None
    except ValueError as exc:
        raise ApiError(400, "bad-json", f"body is not valid JSON: {exc}") from None


def json_body(req: Request, required: bool = True) -> dict[str, Any]:
    """The request's JSON object body, checked for type, size and syntax."""
    length = req.content_length
    if length is not None and length > MAX_BODY_BYTES:
        raise ApiError(413, "too-large", f"body exceeds {MAX_BODY_BYTES} bytes")
    raw = req.body_file.read(MAX_BODY_BYTES + 1) if length is None else req.body
    if len(raw) > MAX_BODY_BYTES:
        raise ApiError(413, "too-large", f"body exceeds {MAX_BODY_BYTES} bytes")
    if not raw.strip():
        if required:
            raise ApiError(400, "missing-body", "a JSON object body is required")
        return {}
    ctype = (req.content_type or "").lower()
    if ctype and ctype != "application/json" and not ctype.endswith("+json"):
        raise ApiError(415, "unsupported-media-type",
                       f"Content-Type must be application/json, not {ctype}")
    data = parse_json(raw)
    if not isinstance(data, dict):
        raise ApiError(400, "bad-json", "body must be a JSON object")
    return data


@dataclass(frozen=True)
class Field:
    """Declares one JSON field: its type, whether required, its bounds and choices."""

    kind: str  # "str", "int", "number", "bool", "list[str]", "object"
    required: bool = False
    minimum: Optional[float] = None
    maximum: Optional[float] = None
    choices: Optional[tuple[str, ...]] = None
    max_length: int = 256
    max_items: int = 1024


def _check_number(name: str, value: Any, spec: Field) -> None:
    if spec.kind == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok:
        what = "an integer" if spec.kind == "int" else "a number"
        raise ApiError(400, "invalid-field", f"{name} must be {what}", field=name)
    if (isinstance(value, float) and not math.isfinite(value)) or abs(value) > MAX_INT:
        raise ApiError(400, "invalid-field", f"{name} is out of range", field=name)
    if spec.minimum is not None and value < spec.minimum:
        raise ApiError(400, "invalid-field", f"{name} must be >= {spec.minimum}", field=name)
    if spec.maximum is not None and value > spec.maximum:
        raise ApiError(400, "invalid-field", f"{name} must be <= {spec.maximum}", field=name)


def _check_str(name: str, value: Any, spec: Field) -> None:
    if not isinstance(value, str):
        raise ApiError(400, "invalid-field", f"{name} must be a string", field=name)
    if not value or len(value) > spec.max_length:
        raise ApiError(400, "invalid-field",
                       f"{name} must have 1 to {spec.max_length} characters", field=name)
    if spec.choices is not None and value not in spec.choices:
        raise ApiError(400, "invalid-field",
                       f"{name} must be one of {', '.join(spec.choices)}", field=name)


def validate(body: Mapping[str, Any], schema: Mapping[str, Field],
             where: str = "body") -> dict[str, Any]:
    """Check ``body`` against ``schema``: unknown, missing and ill-typed fields are 400s."""
    unknown = sorted(set(body) - set(schema))
    if unknown:
        raise ApiError(400, "unknown-field", f"unknown field(s) in {where}: {', '.join(unknown)}",
                       field=unknown[0])
    result: dict[str, Any] = {}
    for name, spec in schema.items():
        if name not in body or body[name] is None:
            if spec.required:
                raise ApiError(400, "missing-field", f"{name} is required", field=name)
            continue
        value = body[name]
        if spec.kind in ("int", "number"):
            _check_number(name, value, spec)
        elif spec.kind == "str":
            _check_str(name, value, spec)
        elif spec.kind == "bool":
            if not isinstance(value, bool):
                raise ApiError(400, "invalid-field", f"{name} must be true or false", field=name)
        elif spec.kind == "list[str]":
            if not isinstance(value, list) or len(value) > spec.max_items:
                raise ApiError(400, "invalid-field",
                               f"{name} must be a list of at most {spec.max_items} strings",
                               field=name)
            for item in value:
                _check_str(name, item, spec)
        elif spec.kind == "object":
            if not isinstance(value, dict):
                raise ApiError(400, "invalid-field", f"{name} must be an object", field=name)
        else:  # pragma: no cover - a schema bug, not a client error
            raise TypeError(f"unknown field kind {spec.kind}")
        result[name] = value
    return result


def bearer_token(req: Request) -> Optional[str]:
    """The bearer token of the Authorization header, or None."""
    header = req.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def authenticate(req: Request, tokens: Mapping[str, str]) -> str:
    """The principal whose token (``tokens``: principal -> token) the request carries.

    Every token is compared in constant time, so the time taken does not tell
    how much of a guess was right nor which principal it was close to.
    """
    token = bearer_token(req)
    if token is None:
        raise ApiError(401, "unauthorized", "missing bearer token")
    found = None
    given = token.encode("utf-8")
    for principal, expected in tokens.items():
        if hmac.compare_digest(given, expected.encode("utf-8")):
            found = principal
    if found is None:
        raise ApiError(401, "unauthorized", "invalid bearer token")
    return found


def query_params(req: Request, allowed: Iterable[str]) -> dict[str, str]:
    """Query parameters, rejecting unknown or repeated ones."""
    allowed = set(allowed)
    result: dict[str, str] = {}
    for name, value in req.GET.items():
        if name not in allowed:
            raise ApiError(400, "unknown-parameter", f"unknown query parameter {name}",
                           field=name)
        if name in result:
            raise ApiError(400, "invalid-parameter", f"{name} given twice", field=name)
        result[name] = value
    return result


def answers(error: type[Exception], answer: Callable[[Any], Response]
            ) -> Callable[[Callable[..., Response]], Callable[..., Response]]:
    """Decorator for handlers: a domain ``error`` they raise is answered with ``answer(err)``."""

    def decorate(func: Callable[..., Response]) -> Callable[..., Response]:
        @functools.wraps(func)
        def wrapper(self: Any, req: Request, **kwargs: Any) -> Response:
            try:
                return func(self, req, **kwargs)
            except error as err:
                return answer(err)

        return wrapper

    return decorate


def handles_errors(func: Callable[..., Response]) -> Callable[..., Response]:
    """Decorator for handlers: ApiError -> its JSON answer; anything else -> logged JSON 500."""
    answered = answers(ApiError, error_response)(func)

    @functools.wraps(func)
    def wrapper(self: Any, req: Request, **kwargs: Any) -> Response:
        try:
            return answered(self, req, **kwargs)
        except Exception:  # noqa: BLE001 - the last line of defence: log and count
            LOG.exception("handler %s failed on %s %s", func.__name__, req.method, req.path)
            on_failure = getattr(self, "on_handler_failure", None)
            if on_failure is not None:
                on_failure(func.__name__)
            return error_response(ApiError(500, "internal", "internal error; see the server log"))

    return wrapper
