"""The AC's side of ASI (CSO draft §7.2): lightpaths and candidate evaluation at the SC.

`AsiClient` speaks JSON over HTTP to the SC's ``/asi/v1`` with the AC's bearer token
(`cso_base.http`, green once ``cso ac`` has monkey-patched the process). An SC that does not answer
raises `AsiUnreachable`; any answer but a success raises `AsiError` with the SC's own error
code, reason and detail, so the procedure can tell a refusal (no path) from a failure.
The benchmarks use the same client over a kept-alive `cso_base.http.Connection` and read the
answers as they came (`post_lightpath`, `delete_lightpath`), every status counted.

`AsiNetworkView` is the `ac_app.resources.NetworkView` of the live AC: the strategies' one
evaluation of their candidates is one ``POST /asi/v1/evaluate`` with the request's
constraints, which reserves nothing.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Optional, Sequence

from ac_app.resources import PathInfo, path_infos_from_asi
from cso_base import http
from cso_base.errors import CodedError

PREFIX = "/asi/v1"
LIGHTPATHS = f"{PREFIX}/lightpaths"
#: Request fields the SC takes as constraints, for both establish and evaluate.
CONSTRAINTS = ("bandwidth_gbps", "max_delay_ms", "max_jitter_ms", "max_hops")


class AsiUnreachable(Exception):
    """The SC did not answer (refused connection, timeout, unknown host)."""


class AsiError(CodedError):
    """The SC answered an error (or an answer that is not what ASI promises)."""

    def __init__(self, status: int, code: str, reason: str, detail: str = ""):
        super().__init__(status, code, reason, f"({detail})" if detail else None)
        self.status = status
        self.detail = detail


Send = Callable[..., http.Answer]


class AsiClient:
    """HTTP client of the SC's ASI for one AC (its bearer token).

    ``send``: `cso_base.http.request` (a connection per call), an `http.Connection` (one
    kept-alive connection, timed answers) or a test's transport, all with its signature.
    """

    def __init__(self, base_url: str, token: str, timeout: float = 10.0,
                 send: Send = http.request):
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self._send = send

    def exchange(self, method: str, path: str, body: Any = None) -> http.Answer:
        """One ASI request, its answer whatever the status; `AsiUnreachable` when there is none
        (from an `http.Connection`: an answer with status 0 instead)."""
        try:
            return self._send(method, self.base_url + path, body=body, token=self.token,
                              timeout=self.timeout)
        except http.Unreachable as exc:
            raise AsiUnreachable(str(exc)) from None

    def call(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        """One ASI call; the answer's JSON object, or `AsiError` / `AsiUnreachable`."""
        return _checked(self.exchange(method, path, body), method, path)

    def post_lightpath(self, src: str, dst: str, service_type: str, label: Optional[str] = None,
                       constraints: Optional[Mapping[str, Any]] = None,
                       dst_node: Optional[str] = None) -> http.Answer:
        """``POST /asi/v1/lightpaths`` (see `establish`), the answer as it came."""
        body: dict[str, Any] = {"src": src, "dst": dst, "service_type": service_type}
        if label is not None:
            body["label"] = label
        if dst_node is not None:
            body["dst_node"] = dst_node
        body.update(_constraints(constraints))
        return self.exchange("POST", LIGHTPATHS, body)

    def establish(self, src: str, dst: str, service_type: str, label: Optional[str] = None,
                  constraints: Optional[Mapping[str, Any]] = None,
                  dst_node: Optional[str] = None) -> dict[str, Any]:
        """``POST /asi/v1/lightpaths``: the lightpath set up (``id``, ``route``, ...).

        ``dst_node``: the DC node where the VM address ``dst`` is attached now (a migrated VM).
        """
        answer = _checked(self.post_lightpath(src, dst, service_type, label, constraints,
                                              dst_node), "POST", LIGHTPATHS)
        for key in ("id", "route", "links", "wavelength", "hops"):
            if key not in answer:
                raise AsiError(201, "bad-answer", f"the lightpath has no {key!r}")
        return answer

    def delete_lightpath(self, lp_id: str) -> http.Answer:
        """``DELETE /asi/v1/lightpaths/{id}``, the answer as it came."""
        return self.exchange("DELETE", f"{LIGHTPATHS}/{lp_id}")

    def teardown(self, lp_id: str) -> Optional[dict[str, Any]]:
        """``DELETE /asi/v1/lightpaths/{id}``: the lightpath removed, None when already gone."""
        try:
            return _checked(self.delete_lightpath(lp_id), "DELETE", f"{LIGHTPATHS}/{lp_id}")
        except AsiError as exc:
            if exc.status == 404:
                return None
            raise

    def evaluate(self, src: str, dsts: Sequence[str],
                 constraints: Optional[Mapping[str, Any]] = None) -> dict[str, Any]:
        """``POST /asi/v1/evaluate``: per destination, feasible or why not; nothing reserved."""
        body = {"src": src, "dsts": list(dsts), **_constraints(constraints)}
        return self.call("POST", f"{PREFIX}/evaluate", body)

    def close(self) -> None:
        """Close the kept-alive connection when ``send`` is an `http.Connection`."""
        if isinstance(self._send, http.Connection):
            self._send.close()


def _checked(answer: http.Answer, method: str, path: str) -> dict[str, Any]:
    """The JSON object of a success; `AsiError` for anything else, `AsiUnreachable` for no
    answer (status 0)."""
    if answer.status == 0:
        raise AsiUnreachable(f"{method} {path}: {answer.text}")
    data = answer.json
    if 200 <= answer.status < 300:
        if not isinstance(data, dict):
            raise AsiError(answer.status, "bad-answer", f"{method} {path}: not a JSON object")
        return data
    if not isinstance(data, dict) or not isinstance(data.get("error"), str):
        text = answer.body[:200].decode("utf-8", "replace")
        raise AsiError(answer.status, "http-error", f"{method} {path}: {text}")
    raise AsiError(answer.status, data["error"], str(data.get("reason") or data["error"]),
                   str(data.get("detail") or ""))


def _constraints(constraints: Optional[Mapping[str, Any]]) -> dict[str, Any]:
    return {key: constraints[key] for key in CONSTRAINTS
            if constraints and constraints.get(key) is not None}


class AsiNetworkView:
    """`NetworkView` over ASI: one ``evaluate`` call with one request's constraints."""

    def __init__(self, client: AsiClient, constraints: Optional[Mapping[str, Any]] = None):
        self.client = client
        self.constraints = dict(constraints or {})

    def evaluate(self, src: str, dsts: Sequence[str]) -> dict[str, PathInfo]:
        """A `PathInfo` for every node of ``dsts``; `AsiError` when the answer lacks one."""
        answer = self.client.evaluate(src, dsts, self.constraints)
        try:
            infos = path_infos_from_asi(answer)
        except (KeyError, TypeError, ValueError) as exc:
            raise AsiError(200, "bad-answer", f"malformed evaluation: {exc!r}") from None
        missing = [dst for dst in dsts if dst not in infos]
        if missing:
            raise AsiError(200, "bad-answer", f"the evaluation lacks {', '.join(missing)}")
        return infos
