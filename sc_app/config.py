"""The SC's configuration: the ``[sc]`` section of an oslo.config file, as a schema.

One schema (`SC_FIELDS`) drives both paths into the SC:

- at run time the options are registered on Ryu's ``CONF`` (`register_opts`) so that
  ``cso sc --config-file F`` reads them, and `settings_from_conf` turns them into `Settings`;
- offline, `check_files` reads the same files with configparser, rejects unknown keys in
  ``[sc]``, converts every value with the *same* oslo type objects and builds the same
  `Settings` (``cso sc check-config F``).

The REST port is not an ``[sc]`` option: the SC's REST API is served by Ryu's own WSGI server,
configured by Ryu's ``wsapi_host`` / ``wsapi_port`` in ``[DEFAULT]`` (or ``--wsapi-port``). Those
and the OpenFlow listener's options are type-checked here and copied into `Settings` so the app
has one object to read.
"""
from __future__ import annotations

import hmac
import types as pytypes
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence

from oslo_config import cfg, types

from cso_base.config import ConfigError, Field, parse_tokens, read_files, read_texts

from topologies.domain import DomainError, restrict
from topologies.loader import TopologyError, load
from topologies.model import Topology

SECTION = "sc"
PATH_ORDERS = ("hops", "length", "te")
WAVELENGTH_POLICIES = ("first-fit", "random-fit", "most-used")
ALTO_AUTH = ("ac-tokens", "none")
DEFAULT_STATE_DIR = "./state/sc"


SC_FIELDS: tuple[Field, ...] = (
    Field("topology", types.String(), "nsfnet",
          "topology name (resolved under topologies/) or path to a topology JSON file"),
    Field("state_dir", types.String(), DEFAULT_STATE_DIR,
          "directory of the SC's SQLite database and other state (created on start)"),
    Field("ac_tokens", types.List(), [],
          "ASI bearer tokens, comma-separated AC_NAME:TOKEN pairs"),
    Field("k", types.Integer(min=1, max=64), 5,
          "number of candidate paths the PCE considers"),
    Field("path_order", types.String(choices=PATH_ORDERS), "hops",
          "how candidate paths are ranked: hops, length (km) or te (TE weight)"),
    Field("wavelength_policy", types.String(choices=WAVELENGTH_POLICIES), "first-fit",
          "wavelength assignment policy"),
    Field("random_seed", types.Integer(min=0), 0,
          "seed of the random-fit policy, so runs repeat"),
    Field("barrier_timeout", types.Float(min=0.01), 2.0,
          "seconds to wait for a switch's barrier reply before a flow install counts as failed"),
    Field("lldp_interval", types.Float(min=0.1), 0.9,
          "seconds between LLDP probes on one port (Ryu's LLDP_SEND_PERIOD_PER_PORT)"),
    Field("link_timeout", types.Float(min=1.0), 10.0,
          "seconds without LLDP before a discovered link is declared down"),
    Field("discovery_grace", types.Float(min=0.0), 15.0,
          "seconds after start before a fibre of the topology not yet discovered is an alarm"),
    Field("switch_hold", types.Float(min=0.0, max=3600.0), 3.0,
          "seconds a switch whose OpenFlow connection dropped keeps its fibres (it forwards "
          "on its entries) before the lightpaths crossing it are re-routed; 0: at once"),
    Field("alarm_history", types.Integer(min=0), 1000,
          "cleared alarms kept in the database (older ones are purged)"),
    Field("event_keepalive", types.Float(min=1.0), 15.0,
          "seconds between keep-alive comments on the ASI event and ALTO update streams"),
    Field("alto_auth", types.String(choices=ALTO_AUTH), "ac-tokens",
          "who may read ALTO (/alto): ac-tokens (an AC's ASI bearer token) or none (open)"),
    Field("domain", types.String(), "",
          "the one domain of the topology this SC owns (docs/multi-domain.md); empty: all"),
)

#: Ryu's own ``[DEFAULT]`` options the SC reads; other ``[DEFAULT]`` keys belong to Ryu.
RYU_FIELDS: tuple[Field, ...] = (
    Field("wsapi_host", types.String(), "0.0.0.0", "REST (ASI, SMI, ALTO) listen address"),
    Field("wsapi_port", types.Port(), 8080, "REST (ASI, SMI, ALTO) listen port"),
    Field("ofp_listen_host", types.String(), "", "OpenFlow listen address (all when empty)"),
    Field("ofp_tcp_listen_port", types.Port(), 6653, "OpenFlow listen port"),
    Field("observe_links", types.Boolean(), True, "LLDP link discovery (on by default in cso sc)"),
)


#: Sections of an SC config file and their options; only ``[sc]`` is ours alone.
SCHEMA = {SECTION: SC_FIELDS, "DEFAULT": RYU_FIELDS}


@dataclass(frozen=True)
class Settings:
    """The SC's validated, frozen configuration (runtime state lives elsewhere)."""

    topology_spec: str
    topology: Topology = field(repr=False, compare=False)
    state_dir: str
    ac_tokens: Mapping[str, str] = field(repr=False)
    k: int
    path_order: str
    wavelength_policy: str
    random_seed: int
    barrier_timeout: float
    lldp_interval: float
    link_timeout: float
    discovery_grace: float
    switch_hold: float
    alarm_history: int
    event_keepalive: float
    rest_host: str
    rest_port: int
    ofp_listen_host: str
    ofp_port: int
    observe_links: bool
    sources: tuple[str, ...] = ()
    alto_auth: str = "ac-tokens"
    #: The domain this SC owns (``topology`` is then that domain's sub-topology); None: all.
    domain: Optional[str] = None

    def ac_for_token(self, token: str) -> Optional[str]:
        """The AC that owns bearer ``token``, or None (constant-time per token)."""
        owner = None
        for ac, known in self.ac_tokens.items():
            if hmac.compare_digest(known.encode(), token.encode()):
                owner = ac
        return owner


def register_opts(conf: cfg.ConfigOpts) -> None:
    """Declare the ``[sc]`` options on an oslo.config object (idempotent)."""
    conf.register_opts([cfg.Opt(f.name, type=f.type, default=f.default, help=f.help)
                        for f in SC_FIELDS], group=SECTION)


def settings_from_conf(conf: cfg.ConfigOpts) -> Settings:
    """`Settings` from an already parsed oslo.config object (Ryu's ``CONF`` inside the app)."""
    register_opts(conf)
    values: dict[str, Any] = {}
    where: dict[str, str] = {}
    errors: list[str] = []
    for section, fields, group in ((SECTION, SC_FIELDS, conf[SECTION]),
                                   ("DEFAULT", RYU_FIELDS, conf)):
        for f in fields:
            where[f.name] = f"[{section}] {f.name}"
            try:
                values[f.name] = getattr(group, f.name)
            except cfg.NoSuchOptError:
                values[f.name] = f.default  # a Ryu option its module did not register
            except (cfg.ConfigFileValueError, ValueError) as exc:
                errors.append(f"{where[f.name]}: {exc}")
    return _build(values, where, tuple(conf.config_file or ()), errors)


def check_file(path: str) -> Settings:
    """Validate one config file offline; `Settings` or `ConfigError`."""
    return check_files([path])


def check_files(paths: Sequence[str]) -> Settings:
    """Validate config files offline, later files overriding earlier ones as in oslo.config."""
    values, where, errors = read_files(paths, SCHEMA, (SECTION,))
    return _build(values, where, tuple(paths), errors)


def parse_string(text: str, source: str = "<string>") -> Settings:
    """Validate a config given as text (tests, tools); `Settings` or `ConfigError`."""
    values, where, errors = read_texts([(source, text)], SCHEMA, (SECTION,))
    return _build(values, where, (source,), errors)


def _build(values: Mapping[str, Any], where: Mapping[str, str], sources: tuple[str, ...],
           errors: list[str]) -> Settings:
    """Checks across values and loading the topology, shared by both paths in.

    ``errors`` holds what reading found already; a value that failed to convert kept its
    default, so these checks still run and every problem is reported at once.
    """
    tokens = parse_tokens(values["ac_tokens"], where["ac_tokens"], errors)
    if not str(values["state_dir"]).strip():
        errors.append(f"{where['state_dir']}: must not be empty")
    topology = None
    try:
        topology = load(values["topology"])
    except TopologyError as exc:
        errors.append(f"{where['topology']}: {exc}")
    # The provisional loader can still fail with bare JSON/IO/KeyError errors.
    except (OSError, ValueError, KeyError) as exc:
        errors.append(f"{where['topology']}: cannot load {values['topology']!r}: "
                      f"{type(exc).__name__}: {exc}")
    domain = str(values["domain"]).strip() or None
    if domain is not None and topology is not None:
        try:
            topology = restrict(topology, domain)
        except DomainError as exc:
            errors.append(f"{where['domain']}: {exc}, from {topology.source}")
    if errors:
        raise ConfigError(errors)
    return Settings(
        topology_spec=values["topology"], topology=topology, state_dir=values["state_dir"],
        ac_tokens=pytypes.MappingProxyType(tokens), k=values["k"],
        path_order=values["path_order"], wavelength_policy=values["wavelength_policy"],
        random_seed=values["random_seed"], barrier_timeout=values["barrier_timeout"],
        lldp_interval=values["lldp_interval"], link_timeout=values["link_timeout"],
        discovery_grace=values["discovery_grace"], switch_hold=values["switch_hold"],
        alarm_history=values["alarm_history"],
        event_keepalive=values["event_keepalive"], rest_host=values["wsapi_host"],
        rest_port=values["wsapi_port"], ofp_listen_host=values["ofp_listen_host"],
        ofp_port=values["ofp_tcp_listen_port"], observe_links=values["observe_links"],
        sources=sources, alto_auth=values["alto_auth"], domain=domain)
