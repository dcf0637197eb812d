"""The wire vocabulary of ASI and ALTO: what the SC says and the AC reads, defined once.

Both strata import these names, so a reason code, a constraint field or a media type
cannot drift between the SC that sends it and the AC that parses it. Nothing here
computes anything: the SC's SA-PCE decides *which* reason applies (`sc_app.pce`), the
AC's SSE and procedure decide what to do about it.
"""
from __future__ import annotations

from cso_base.rest import Field

# --- ASI: why no lightpath (the SA-PCE's no-path reasons, `sc_app.pce.NoPath.reason`) -------
UNKNOWN_NODE = "unknown-node"
SAME_NODE = "same-node"
DISCONNECTED = "disconnected"
EXCLUDED = "excluded"
BANDWIDTH_EXCEEDED = "bandwidth-exceeded"
INCLUDE_UNSATISFIED = "include-unsatisfied"
HOPS_EXCEEDED = "hops-exceeded"
DELAY_EXCEEDED = "delay-exceeded"
JITTER_EXCEEDED = "jitter-exceeded"
NO_WAVELENGTH = "no-wavelength"
NO_DISJOINT_PAIR = "no-disjoint-pair"
#: Every no-path reason, in the order the SA-PCE applies its filters.
REASONS = (UNKNOWN_NODE, SAME_NODE, DISCONNECTED, EXCLUDED, BANDWIDTH_EXCEEDED,
           INCLUDE_UNSATISFIED, HOPS_EXCEEDED, DELAY_EXCEEDED, JITTER_EXCEEDED, NO_WAVELENGTH,
           NO_DISJOINT_PAIR)
#: Error code of an endpoint that is neither a known node nor a known host.
UNKNOWN_ENDPOINT = "unknown-endpoint"
#: Error code of an endpoint (node or host) of another domain than the SC's own (an SC with
#: ``[sc] domain``, docs/multi-domain.md); ``reason`` names both domains.
NOT_IN_DOMAIN = "not-in-domain"
#: Error code of an attachment override (``src_node``/``dst_node``) that cannot hold the endpoint.
INVALID_ATTACHMENT = "invalid-attachment"

# --- ASI: error codes (the ``error`` of a refused request; ``reason`` says more) -----------
#: No route: ``reason`` is one of `REASONS`.
NO_PATH = "no-path"
#: A constraint names what the network does not have, or cannot apply (e.g. protection of a
#: local connection).
INVALID_CONSTRAINT = "invalid-constraint"
#: Another lightpath already carries traffic between these endpoints.
ENDPOINT_IN_USE = "endpoint-in-use"
#: The switches did not take the entries: ``reason`` is the SCI's code, ``dpid`` the switch.
INSTALL_FAILED = "install-failed"
#: No such lightpath (or another AC's).
NOT_FOUND = "not-found"
#: The lightpath's state does not allow the request (e.g. already being torn down).
CONFLICT = "conflict"

# --- ASI: requests -------------------------------------------------------------------------
SERVICE_TYPES = ("generic", "vod", "vm", "migration", "function")
#: Protection modes of ASI's ``protection`` option: none, link-disjoint, SRLG-disjoint backup.
PROTECTION_MODES = ("none", "link", "srlg")
#: The quality-of-service constraints a user may also give the AC (UAI) for its lightpath.
QOS_FIELDS = {
    "bandwidth_gbps": Field("number", minimum=0, maximum=1e6),
    "max_delay_ms": Field("number", minimum=0, maximum=1e6),
    "max_jitter_ms": Field("number", minimum=0, maximum=1e6),
    "max_hops": Field("int", minimum=1, maximum=10_000),
}
#: Constraint fields shared by ASI establish and evaluate.
CONSTRAINT_FIELDS = {
    **QOS_FIELDS,
    "include_nodes": Field("list[str]", max_items=64),
    "exclude_nodes": Field("list[str]", max_items=4096),
    "exclude_links": Field("list[str]", max_items=4096),
    "exclude_srlgs": Field("list[str]", max_items=4096),
}
#: ``POST /asi/v1/lightpaths``.
ESTABLISH_SCHEMA = {
    "src": Field("str", required=True, max_length=64),
    "dst": Field("str", required=True, max_length=64),
    # Where a DC-host address (10.2.i.x) is attached now, when a VM migrated away from node i.
    "src_node": Field("str", max_length=64),
    "dst_node": Field("str", max_length=64),
    "service_type": Field("str", choices=SERVICE_TYPES),
    "label": Field("str", max_length=128),
    # A disjoint backup path switched to by the ingress switch itself (fast-failover group).
    "protection": Field("str", choices=PROTECTION_MODES),
    **CONSTRAINT_FIELDS,
}
#: ``POST /asi/v1/evaluate``.
EVALUATE_SCHEMA = {
    "src": Field("str", required=True, max_length=64),
    "dsts": Field("list[str]", required=True, max_items=4096, max_length=64),
    **CONSTRAINT_FIELDS,
}

# --- ALTO (RFC 7285 §10 and extensions): media types, error codes, cost modes -------------
ALTO_PREFIX = "/alto"
DIRECTORY = "application/alto-directory+json"
NETWORK_MAP = "application/alto-networkmap+json"
NETWORK_MAP_FILTER = "application/alto-networkmapfilter+json"
COST_MAP = "application/alto-costmap+json"
COST_MAP_FILTER = "application/alto-costmapfilter+json"
ENDPOINT_COST = "application/alto-endpointcost+json"
ENDPOINT_COST_PARAMS = "application/alto-endpointcostparams+json"
ENDPOINT_PROP = "application/alto-endpointprop+json"
ENDPOINT_PROP_PARAMS = "application/alto-endpointpropparams+json"
PROP_MAP = "application/alto-propmap+json"
PROP_MAP_PARAMS = "application/alto-propmapparams+json"
ERROR = "application/alto-error+json"
EVENT_STREAM = "text/event-stream"
UPDATE_STREAM_PARAMS = "application/alto-updatestreamparams+json"
UPDATE_STREAM_CONTROL = "application/alto-updatestreamcontrol+json"
MERGE_PATCH = "application/merge-patch+json"

E_SYNTAX = "E_SYNTAX"
E_MISSING_FIELD = "E_MISSING_FIELD"
E_INVALID_FIELD_TYPE = "E_INVALID_FIELD_TYPE"
E_INVALID_FIELD_VALUE = "E_INVALID_FIELD_VALUE"

NUMERICAL, ORDINAL = "numerical", "ordinal"
