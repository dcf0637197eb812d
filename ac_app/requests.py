"""What a user asks of the AC, typed, and why the AC may not do it.

The UA (`ac_app.ua`) turns a UAI body into an `AppRequest` (vod, vm) or a `MigrationRequest`;
the procedure (`ac_app.procedure`) serves the first and the migration (`ac_app.migration`) the
second. None of them sees JSON or HTTP: they raise a `RequestError` of some `Kind` (invalid,
forbidden, not found, a conflict, refused by a stratum, a peer unavailable, ...) with a
machine-readable code, and the UAI (`ac_app.uai`) answers it with the HTTP status of its kind.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Mapping, Optional

from ac_app.db import Record
from ac_app.resources import Demand
from cso_base.errors import CodedError

#: Request types: a video session, a VM, and a VM migration (CSO draft §6.2, managers only).
VOD, VM, MIGRATION = "vod", "vm", "migration"
TYPES = (VOD, VM, MIGRATION)


@dataclass(frozen=True)
class AppRequest:
    """A validated vod or vm request: what to serve, from where, for how long."""

    type: str
    src: str
    src_node: str
    demand: Demand
    duration_s: float
    constraints: Mapping[str, Any]
    content: Optional[str] = None

    def to_json(self) -> dict[str, Any]:
        """The specifics kept with the record."""
        spec: dict[str, Any] = {"constraints": dict(self.constraints)}
        if self.content is not None:
            spec["content"] = self.content
        return spec

    @classmethod
    def of(cls, record: Record) -> "AppRequest":
        """The request a recorded vm or vod request was served with."""
        return cls(record.type, record.src, record.src_node,
                   Demand(record.cpu, record.memory_gb, record.disk_gb), record.duration_s,
                   dict(record.spec.get("constraints", {})), record.spec.get("content"))


@dataclass(frozen=True)
class MigrationRequest:
    """A provider manager's request to move an active vm request (by id) to another DC."""

    request: str
    #: The DC to move to; None: the SSE's choice among the others.
    dst_dc: Optional[str] = None


class Kind(enum.Enum):
    """What sort of no a `RequestError` is (the UAI answers each with its own HTTP status)."""

    INVALID = "invalid"            # a field is malformed
    INAPPLICABLE = "inapplicable"  # well-formed, but names what this network has not
    FORBIDDEN = "forbidden"        # the user may not ask for this
    NOT_FOUND = "not-found"        # no such request (or not the user's)
    CONFLICT = "conflict"          # the request's state does not allow it now
    REFUSED = "refused"            # a stratum said no: no server fits, no path, ...
    BAD_ANSWER = "bad-answer"      # a peer (agent, SC) answered something else than expected
    UNAVAILABLE = "unavailable"    # a peer did not answer
    INTERNAL = "internal"          # a bug


#: The error code of a stratum's failure, by kind (the stratum's own reason goes in ``reason``).
_STRATUM_CODES = {Kind.REFUSED: "refused", Kind.UNAVAILABLE: "unavailable",
                  Kind.BAD_ANSWER: "bad-gateway", Kind.INTERNAL: "internal"}


class RequestError(CodedError):
    """Why the AC does not do what a request asks: kind, code, reason, stratum, and facts.

    ``stratum`` ("application" or "network") and ``detail`` are set when a stratum failed a
    step of the procedure (`stratum_failed`); ``facts`` are further machine-readable fields
    (``field``: the field at fault; ``id``: the request's record; ...).
    """

    def __init__(self, kind: Kind, code: str, reason: str, stratum: Optional[str] = None,
                 detail: Optional[str] = None, **facts: Any):
        super().__init__(kind.value, code, reason, detail)
        self.kind = kind
        self.stratum = stratum
        self.detail = detail
        self.facts = facts

    @classmethod
    def stratum_failed(cls, kind: Kind, stratum: Optional[str], reason: str,
                       detail: str = "") -> "RequestError":
        """A step the ``stratum`` did not do: refused, unavailable, a bad answer (or a bug)."""
        return cls(kind, _STRATUM_CODES[kind], reason, stratum=stratum, detail=detail)

    def with_facts(self, **facts: Any) -> "RequestError":
        """The same error with more facts (e.g. the id of the request it ended)."""
        return RequestError(self.kind, self.code, self.reason, self.stratum, self.detail,
                            **self.facts, **facts)
