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

import configparser
import difflib
import hmac
import math
import types as pytypes
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Optional, Sequence

from oslo_config import cfg, types

from topologies.loader import TopologyError, load
from topologies.model import Topology

SECTION = "sc"
PATH_ORDERS = ("hops", "length", "te")
WAVELENGTH_POLICIES = ("first-fit", "random-fit", "most-used")
DEFAULT_STATE_DIR = "./state/sc"


@dataclass(frozen=True)
class Field:
    """One configuration option: name, oslo type (parser and range), default and help."""

    name: str
    type: types.ConfigType
    default: Any
    help: str


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
    Field("alarm_history", types.Integer(min=0), 1000,
          "cleared alarms kept in the database (older ones are purged)"),
    Field("event_keepalive", types.Float(min=1.0), 15.0,
          "seconds between keep-alive comments on the ASI event stream"),
)

#: Ryu's own ``[DEFAULT]`` options the SC reads; other ``[DEFAULT]`` keys belong to Ryu.
RYU_FIELDS: tuple[Field, ...] = (
    Field("wsapi_host", types.String(), "0.0.0.0", "REST (ASI, SMI, ALTO) listen address"),
    Field("wsapi_port", types.Port(), 8080, "REST (ASI, SMI, ALTO) listen port"),
    Field("ofp_listen_host", types.String(), "", "OpenFlow listen address (all when empty)"),
    Field("ofp_tcp_listen_port", types.Port(), 6653, "OpenFlow listen port"),
    Field("observe_links", types.Boolean(), True, "LLDP link discovery (on by default in cso sc)"),
)


class ConfigError(ValueError):
    """A configuration is invalid; ``errors`` lists every problem, each naming where it is."""

    def __init__(self, errors: Sequence[str]):
        super().__init__("\n".join(errors))
        self.errors = list(errors)


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
    alarm_history: int
    event_keepalive: float
    rest_host: str
    rest_port: int
    ofp_listen_host: str
    ofp_port: int
    observe_links: bool
    sources: tuple[str, ...] = ()

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
    texts, errors = [], []
    for path in paths:
        try:
            with open(path, encoding="utf-8") as handle:
                texts.append((path, handle.read()))
        except OSError as exc:
            errors.append(f"{path}: cannot read: {exc.strerror or exc}")
    return _check_texts(texts, errors)


def parse_string(text: str, source: str = "<string>") -> Settings:
    """Validate a config given as text (tests, tools); `Settings` or `ConfigError`."""
    return _check_texts([(source, text)], [])


def _check_texts(texts: Sequence[tuple[str, str]], errors: list[str]) -> Settings:
    values = {f.name: f.default for f in SC_FIELDS + RYU_FIELDS}
    where = {f.name: f"(default) [{_section_of(f)}] {f.name}" for f in SC_FIELDS + RYU_FIELDS}
    for source, text in texts:
        errors.extend(_read_text(text, source, values, where))
    return _build(values, where, tuple(source for source, _text in texts), errors)


def _section_of(f: Field) -> str:
    return SECTION if f in SC_FIELDS else "DEFAULT"


def _read_text(text: str, source: str, values: dict[str, Any],
               where: dict[str, str]) -> list[str]:
    """Convert the known keys of one file into ``values``; return the errors found."""
    # DEFAULT as an ordinary section: configparser would otherwise copy its keys into [sc].
    parser = configparser.ConfigParser(default_section="\0", interpolation=None, strict=True)
    parser.optionxform = str  # oslo.config keys are case-sensitive: `K` is not `k`
    try:
        parser.read_string(text, source=source)
    except configparser.DuplicateOptionError as exc:
        return [f"{source}: [{exc.section}] {exc.option}: given twice (line {exc.lineno})"]
    except configparser.DuplicateSectionError as exc:
        return [f"{source}: [{exc.section}]: section given twice (line {exc.lineno})"]
    except configparser.Error as exc:
        return [f"{source}: {_one_line(exc)}"]
    errors = []
    known = {f.name for f in SC_FIELDS}
    if parser.has_section(SECTION):
        for key in parser.options(SECTION):
            if key not in known:
                close = difflib.get_close_matches(key.lower(), known, n=1)
                hint = (f"did you mean {close[0]!r}?" if close
                        else f"known: {', '.join(sorted(known))}")
                errors.append(f"{source}: [{SECTION}] {key}: unknown option ({hint})")
    for section, fields in ((SECTION, SC_FIELDS), ("DEFAULT", RYU_FIELDS)):
        if not parser.has_section(section):
            continue
        for f in fields:
            if not parser.has_option(section, f.name):
                continue
            raw = parser.get(section, f.name)
            location = f"{source}: [{section}] {f.name}"
            try:
                value = f.type(raw)
            except ValueError as exc:
                errors.append(f"{location}: {exc} (got {raw!r})")
                continue
            if value is None:
                errors.append(f"{location}: a value is required")
                continue
            if isinstance(value, float) and not math.isfinite(value):
                errors.append(f"{location}: must be a finite number (got {raw!r})")
                continue
            values[f.name], where[f.name] = value, location
    return errors


def _build(values: Mapping[str, Any], where: Mapping[str, str], sources: tuple[str, ...],
           errors: list[str]) -> Settings:
    """Checks across values and loading the topology, shared by both paths in.

    ``errors`` holds what reading found already; a value that failed to convert kept its
    default, so these checks still run and every problem is reported at once.
    """
    tokens = _parse_tokens(values["ac_tokens"], where["ac_tokens"], errors)
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
    if errors:
        raise ConfigError(errors)
    return Settings(
        topology_spec=values["topology"], topology=topology, state_dir=values["state_dir"],
        ac_tokens=pytypes.MappingProxyType(tokens), k=values["k"],
        path_order=values["path_order"], wavelength_policy=values["wavelength_policy"],
        random_seed=values["random_seed"], barrier_timeout=values["barrier_timeout"],
        lldp_interval=values["lldp_interval"], link_timeout=values["link_timeout"],
        discovery_grace=values["discovery_grace"], alarm_history=values["alarm_history"],
        event_keepalive=values["event_keepalive"], rest_host=values["wsapi_host"],
        rest_port=values["wsapi_port"], ofp_listen_host=values["ofp_listen_host"],
        ofp_port=values["ofp_tcp_listen_port"], observe_links=values["observe_links"],
        sources=sources)


def _parse_tokens(items: Iterable[str], location: str, errors: list[str]) -> dict[str, str]:
    """``AC:TOKEN`` items -> {AC: TOKEN}; names and tokens must be non-empty and unique."""
    tokens: dict[str, str] = {}
    for item in items:
        ac, sep, token = (part.strip() for part in item.partition(":"))
        if not sep or not ac or not token:
            errors.append(f"{location}: {item!r} is not AC_NAME:TOKEN with both parts non-empty")
        elif any(c.isspace() for c in token):
            errors.append(f"{location}: the token of AC {ac!r} contains whitespace")
        elif ac in tokens:
            errors.append(f"{location}: AC {ac!r} is given more than one token")
        elif token in tokens.values():
            errors.append(f"{location}: AC {ac!r} reuses another AC's token")
        else:
            tokens[ac] = token
    return tokens


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())
