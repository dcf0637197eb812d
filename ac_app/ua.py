"""UA (CSO draft §3.1, §5): the AC's User Agent, between the UAI and the procedure.

The UAI (`ac_app.uai`) authenticates the user and hands the UA the body or the query; the UA

- turns a user's JSON into a typed request (`AppRequest` for vod and vm, `MigrationRequest`):
  fields against their schema, the source a user host of the topology, the content name, a
  positive cpu;
- checks who may do what: a user sees and releases their own requests, a provider manager
  everyone's; only managers migrate VMs, see the alarms or ask for another user's requests;
- forwards a request to the procedure (`ac_app.procedure`) or the migration
  (`ac_app.migration`), and releases one on the user's word;
- lists and reads a user's requests and their accounting (resources held, time, QoE rating).

Another user's request is as good as missing: the same answer as for an unknown id. What the
UA refuses is a `RequestError` (invalid, inapplicable, forbidden, not found), but for a body
that does not fit its schema: `cso_base.rest.validate`, the JSON plumbing every interface
shares, answers that itself.
"""
from __future__ import annotations

import ipaddress
from typing import Any, Callable, Mapping, Optional, Union

from ac_app.config import User
from ac_app.db import STATUSES, Record, accounting_entry, accounting_totals, iso
from ac_app.dc_agent.agent import AgentError, check_content_request
from ac_app.migration import Migration
from ac_app.procedure import Procedure
from ac_app.requests import (MIGRATION, TYPES, VM, VOD, AppRequest, Kind, MigrationRequest,
                             RequestError)
from ac_app.resources import Demand
from cso_base.rest import Field, validate
from cso_base.wire import QOS_FIELDS
from topologies.addressing import USER, AddressError
from topologies.model import Topology

_TYPE = Field("str", required=True, choices=TYPES)
_SRC = Field("str", required=True, max_length=64)


class Ua:
    """The UA: parses, authorises and forwards user requests; reads and accounts them."""

    def __init__(self, procedure: Procedure, migration: Migration, topology: Topology,
                 vod_demand: Demand, default_duration_s: float, max_duration_s: float):
        self.procedure = procedure
        self.migration = migration
        self.db = procedure.db
        self.clock: Callable[[], float] = procedure.clock
        self.topology = topology
        self.vod_demand = vod_demand
        self.default_duration_s = default_duration_s
        duration = Field("number", minimum=1, maximum=max_duration_s)
        self._schemas = {
            VOD: {"type": _TYPE, "src": _SRC, "content": Field("str", required=True),
                  "duration_s": duration, **QOS_FIELDS},
            VM: {"type": _TYPE, "src": _SRC, "cpu": Field("number", required=True, maximum=1e6),
                 "memory_gb": Field("number", required=True, minimum=0, maximum=1e9),
                 "disk_gb": Field("number", required=True, minimum=0, maximum=1e12),
                 "duration_s": duration, **QOS_FIELDS},
            MIGRATION: {"type": _TYPE, "request": Field("str", required=True, max_length=64),
                        "dst_dc": Field("str", max_length=64)},
        }

    # -- requests ------------------------------------------------------------------------------

    def submit(self, user: User, body: Mapping[str, Any]) -> Record:
        """Serve ``user``'s request (the active record; for a migration, its own record)."""
        request = self.parse(user, body)
        if isinstance(request, MigrationRequest):
            return self.migration.migrate(user, request)
        return self.procedure.submit(user, request)

    def parse(self, user: User, body: Mapping[str, Any]) -> Union[AppRequest, MigrationRequest]:
        """The typed request of a UAI body, if ``user`` may ask for it."""
        kind = validate({"type": body.get("type")}, {"type": _TYPE})["type"]
        if kind == MIGRATION:
            if not user.manager:
                raise RequestError(Kind.FORBIDDEN, "forbidden", "only provider managers may ask "
                                   "for VM migration")
            req = validate(body, self._schemas[MIGRATION])
            return MigrationRequest(req["request"], req.get("dst_dc"))
        req = validate(body, self._schemas[kind])
        src_node = self._src_node(req["src"])
        constraints = {key: req[key] for key in QOS_FIELDS if key in req}
        content = None
        if kind == VOD:
            content = req["content"]
            try:
                check_content_request(content, None)
            except AgentError as exc:
                raise RequestError(Kind.INVALID, "invalid-field", f"content: {exc.reason}",
                                   field="content") from None
            demand = self.vod_demand
        else:
            if req["cpu"] <= 0:
                raise RequestError(Kind.INVALID, "invalid-field", "cpu must be > 0", field="cpu")
            demand = Demand(req["cpu"], req["memory_gb"], req["disk_gb"])
        return AppRequest(kind, req["src"], src_node, demand,
                          float(req.get("duration_s", self.default_duration_s)), constraints,
                          content)

    def _src_node(self, src: str) -> str:
        """The node of the user host ``src``."""
        try:
            ipaddress.IPv4Address(src)
        except ValueError:
            raise RequestError(Kind.INVALID, "invalid-field", "src must be an IPv4 address",
                               field="src") from None
        try:
            host = self.topology.addresses.locate(src)
        except AddressError:
            host = None
        if host is None or host.kind != USER:
            raise RequestError(Kind.INAPPLICABLE, "unknown-endpoint", f"{src} is not a user host "
                               f"of {self.topology.name} (10.1.<i>.<n> at node i)", field="src")
        return host.node

    def delete(self, user: User, request_id: str) -> Record:
        """Release an active request now (its user or a manager): lightpath, then VM."""
        record = self.get(user, request_id)
        return self.procedure.release(record, "deleted" if record.owner == user.name
                                      else f"deleted by {user.name}")

    # -- queries -------------------------------------------------------------------------------

    def get(self, user: User, request_id: str) -> Record:
        """A request the user may see (a manager: any); another user's is as good as missing."""
        record = self.db.find(request_id)
        if record is None or not (user.manager or record.owner == user.name):
            raise RequestError(Kind.NOT_FOUND, "not-found", f"no request {request_id}")
        return record

    def list(self, user: User, status: Optional[str] = None, type_: Optional[str] = None,
             owner: Optional[str] = None) -> list[Record]:
        """The user's requests (a manager: everyone's, or ``owner``'s), oldest first."""
        if status is not None and status not in STATUSES:
            raise RequestError(Kind.INVALID, "invalid-parameter", f"status must be one of "
                               f"{', '.join(STATUSES)}", field="status")
        if type_ is not None and type_ not in TYPES:
            raise RequestError(Kind.INVALID, "invalid-parameter",
                               f"type must be one of {', '.join(TYPES)}", field="type")
        if owner is not None and not user.manager:
            raise RequestError(Kind.FORBIDDEN, "forbidden", "only provider managers may ask for "
                               "another user's requests", field="owner")
        return self.db.list(owner if user.manager else user.name, status, type_)

    def accounting(self, user: User, owner: Optional[str] = None) -> dict[str, Any]:
        """Per request and per type: resources held, time, QoE rating (own; managers: all)."""
        records = self.list(user, owner=owner)
        now = self.clock()
        return {"time": iso(now), "requests": [accounting_entry(r, now) for r in records],
                "totals": accounting_totals(records, now)}

    def alarms(self, user: User) -> tuple[list[Record], dict[str, Any]]:
        """Requests whose leftovers raised an alarm, and the orphan sweep's report (provider
        managers only)."""
        self.manager_only(user, "the alarms")
        return self.procedure.alarms(), self.procedure.orphans.report()

    @staticmethod
    def manager_only(user: User, what: str) -> None:
        """Only provider managers may see ``what``."""
        if not user.manager:
            raise RequestError(Kind.FORBIDDEN, "forbidden",
                               f"only provider managers may see {what}")
