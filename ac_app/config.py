"""The AC's configuration: the ``[ac]`` section of an INI file, as a schema (`cso_base.config`).

``cso ac check-config F`` validates offline with the same code ``cso ac --config F`` runs.
"""
from __future__ import annotations

import types as pytypes
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence

from oslo_config import types

from ac_app.sse import STRATEGIES
from cso_base.config import ConfigError, Field, parse_tokens, read_files, read_texts
from topologies.loader import TopologyError, load
from topologies.model import Topology

SECTION = "ac"
ROLES = ("user", "provider-manager")
NETWORK_VIEWS = ("asi", "alto")
#: Where the ALTO IRD is, under ``sc_url``, when ``alto_url`` is not given.
ALTO_DIRECTORY = "/alto/directory"

AC_FIELDS: tuple[Field, ...] = (
    Field("topology", types.String(), "nsfnet",
          "topology name or file: the AC reads node ids and DC sites from it"),
    Field("state_dir", types.String(), "./state/ac", "directory of the AC's SQLite database"),
    Field("listen_host", types.String(), "0.0.0.0", "UAI listen address"),
    Field("listen_port", types.Port(), 8090, "UAI listen port"),
    Field("sc_url", types.String(), "http://127.0.0.1:8080", "base URL of the SC (ASI)"),
    Field("sc_token", types.String(), "", "this AC's bearer token on the SC's ASI"),
    Field("sc_timeout", types.Float(min=0.1), 10.0, "seconds to wait for an SC answer"),
    Field("users", types.List(), [],
          "UAI users: comma-separated NAME:ROLE:TOKEN, ROLE user or provider-manager"),
    Field("strategy", types.String(choices=tuple(sorted(STRATEGIES))), "GLB",
          "server selection strategy of the SSE"),
    Field("glb_a", types.Float(min=0.0, max=1.0), 0.5,
          "GLB: weight of memory against cpu utilisation in A(s)"),
    Field("glb_b", types.Float(min=0.0, max=1.0), 0.5,
          "GLB: weight of the application term against the network term in x"),
    Field("glb_k", types.Integer(min=1, max=1000), 5, "GLB: candidate servers of step 1"),
    Field("random_seed", types.Integer(min=0), 0, "seed of RB, so runs repeat"),
    Field("network_view", types.String(choices=NETWORK_VIEWS), "asi",
          "where SSE gets network information: asi (POST /asi/v1/evaluate) or alto (the "
          "SC's ALTO cost maps; ASI for what ALTO cannot settle)"),
    Field("alto_url", types.String(), "",
          "URL of the ALTO server's directory (IRD); empty: sc_url + /alto/directory"),
    Field("agents", types.List(), [], "DC agents: comma-separated DC_ID:URL"),
    Field("agent_token", types.String(), "", "bearer token the agents expect (empty: none)"),
    Field("agent_poll_interval", types.Float(min=0.1), 2.0, "seconds between agent polls"),
    Field("agent_timeout", types.Float(min=0.1), 2.0, "seconds to wait for an agent"),
    Field("agent_failures", types.Integer(min=1), 3,
          "failed polls in a row before a DC is marked unavailable"),
    Field("vod_cpu", types.Integer(min=0), 1, "cpu cores a VoD session holds"),
    Field("vod_memory_gb", types.Float(min=0.0), 1.0, "memory a VoD session holds"),
    Field("vod_disk_gb", types.Float(min=0.0), 1.0, "disk a VoD session holds"),
    Field("default_duration_s", types.Float(min=1.0), 3600.0,
          "how long a request holds its resources when it does not say"),
    Field("max_duration_s", types.Float(min=1.0), 86400.0, "longest duration a request may ask"),
    Field("leftover_alarm_after_s", types.Float(min=0.0), 300.0,
          "seconds a release the agent or the SC does not confirm is retried before an alarm "
          "is raised (GET /uai/v1/alarms); the retries go on"),
    Field("orphan_sweep_interval_s", types.Float(min=0.0), 10.0,
          "seconds between orphan sweeps: lightpaths (at the SC) and VMs (at the agents) that "
          "no request holds, seen by two sweeps in a row, are released; 0: no sweep"),
    Field("orphan_sweep_vms", types.Boolean(), True,
          "the orphan sweep also deletes VMs (false: only lightpaths; e.g. agents shared with "
          "another AC)"),
)
SCHEMA = {SECTION: AC_FIELDS}


@dataclass(frozen=True)
class User:
    """A UAI user: name, role and bearer token."""

    name: str
    role: str
    token: str = field(repr=False)

    @property
    def manager(self) -> bool:
        """True for a provider manager (may ask for VM migration)."""
        return self.role == "provider-manager"


@dataclass(frozen=True)
class AcSettings:
    """The AC's validated, frozen configuration."""

    topology: Topology = field(repr=False, compare=False)
    values: Mapping[str, Any] = field(repr=False)
    users: Mapping[str, User] = field(repr=False)
    agents: Mapping[str, str]
    sources: tuple[str, ...] = ()

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["values"][name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def alto_directory_url(self) -> str:
        """Where the ALTO client finds the IRD."""
        return self.values["alto_url"] or self.values["sc_url"].rstrip("/") + ALTO_DIRECTORY

    def user_tokens(self) -> dict[str, str]:
        """User name -> token, for `cso_base.rest.authenticate`."""
        return {name: user.token for name, user in self.users.items()}


def check_files(paths: Sequence[str]) -> AcSettings:
    """Validate config files offline; `AcSettings` or `ConfigError` naming file and field."""
    values, where, errors = read_files(paths, SCHEMA, (SECTION,))
    return _build(values, where, tuple(paths), errors)


def parse_string(text: str, source: str = "<string>") -> AcSettings:
    """Validate a config given as text (tests, tools)."""
    values, where, errors = read_texts([(source, text)], SCHEMA, (SECTION,))
    return _build(values, where, (source,), errors)


def _build(values: dict[str, Any], where: Mapping[str, str], sources: tuple[str, ...],
           errors: list[str]) -> AcSettings:
    users = _parse_users(values["users"], where["users"], errors)
    agents = parse_tokens(values["agents"], where["agents"], errors, what="DC")
    for dc, url in agents.items():
        if not url.startswith(("http://", "https://")):
            errors.append(f"{where['agents']}: DC {dc!r}: {url!r} is not an http(s) URL")
    if not values["sc_url"].startswith(("http://", "https://")):
        errors.append(f"{where['sc_url']}: {values['sc_url']!r} is not an http(s) URL")
    if values["alto_url"] and not values["alto_url"].startswith(("http://", "https://")):
        errors.append(f"{where['alto_url']}: {values['alto_url']!r} is not an http(s) URL")
    if not values["sc_token"]:
        errors.append(f"{where['sc_token']}: the AC needs its ASI token")
    topology: Optional[Topology] = None
    try:
        topology = load(values["topology"])
    except TopologyError as exc:
        errors.append(f"{where['topology']}: {exc}")
    if topology is not None:
        dcs = {node.dc.id for node in topology.nodes.values() if node.dc is not None}
        for dc in agents:
            if dc not in dcs:
                errors.append(f"{where['agents']}: {dc!r} is not a DC of topology "
                              f"{topology.name} ({', '.join(sorted(dcs))})")
    if errors:
        raise ConfigError(errors)
    return AcSettings(topology=topology, values=pytypes.MappingProxyType(dict(values)),
                      users=pytypes.MappingProxyType(users),
                      agents=pytypes.MappingProxyType(agents), sources=sources)


def _parse_users(items: Sequence[str], location: str, errors: list[str]) -> dict[str, User]:
    """``NAME:ROLE:TOKEN`` items -> users; names and tokens unique, roles known."""
    pairs, roles = [], {}
    for item in items:
        name, sep, rest = (part.strip() for part in item.partition(":"))
        role, sep2, token = (part.strip() for part in rest.partition(":"))
        if not (sep and sep2 and name and token):
            errors.append(f"{location}: {item!r} is not NAME:ROLE:TOKEN")
            continue
        if role not in ROLES:
            errors.append(f"{location}: user {name!r}: role must be one of {', '.join(ROLES)}")
            continue
        roles[name] = role
        pairs.append(f"{name}:{token}")
    tokens = parse_tokens(pairs, location, errors, what="user")
    return {name: User(name, roles[name], token) for name, token in tokens.items()}
