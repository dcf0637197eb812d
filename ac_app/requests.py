"""What a user asks of the AC, typed: an application request or a VM migration request.

The UA (`ac_app.ua`) turns a UAI body into one of these; the procedure (`ac_app.procedure`)
serves an `AppRequest` and the migration (`ac_app.migration`) a `MigrationRequest`. Neither
sees JSON.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional

from ac_app.db import Record
from ac_app.resources import Demand

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
