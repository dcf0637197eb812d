"""Declared schema of topology files: sections, fields, types, defaults, bounds.

`check` validates one JSON object against a section and returns its fields
with defaults filled in; every error is a `TopologyError` naming the file, the
JSON path and the reason. Cross-references (node ids, ports, duplicates) are
the loader's job. docs/topology-format.md documents the same declarations.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, Optional

#: A lightpath on wavelength λ (0..W-1) is tagged with VLAN VID 1000+λ, which must stay <= 4094.
VID_BASE = 1000
MAX_WAVELENGTHS = 4094 - VID_BASE
#: OpenFlow datapath ids are 64-bit.
MAX_DPID = 2 ** 64 - 1
#: OFPP_MAX: the highest physical port number in OpenFlow 1.3.
MAX_PORT = 0xFFFFFF00
#: Ports 1 and 2 belong to the user and DC hosts (see `topologies.model`).
MIN_FIBRE_PORT = 3
#: No fibre span is longer than the Earth's circumference.
MAX_LENGTH_KM = 40075.0
MAX_ID_LENGTH = 64

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_KIND_NAMES = {"string": "a string", "id": "an id (a non-empty string)",
               "integer": "an integer", "number": "a number",
               "object": "an object", "array": "an array", "map": "an object"}


class TopologyError(ValueError):
    """A topology file is invalid: names the file, the JSON path and the reason."""

    def __init__(self, source: str, path: str, reason: str):
        super().__init__(f"{source}: {path}: {reason}")
        self.source, self.path, self.reason = source, path, reason


class JSONObject(dict):
    """A parsed JSON object that remembers keys the text gave more than once."""

    duplicates: tuple[str, ...] = ()

    @classmethod
    def from_pairs(cls, pairs: list[tuple[str, Any]]) -> "JSONObject":
        """`json` object_pairs_hook: keep the last value, note repeated keys."""
        obj = cls()
        repeated = []
        for key, value in pairs:
            if key in obj:
                repeated.append(key)
            obj[key] = value
        obj.duplicates = tuple(repeated)
        return obj


@dataclass(frozen=True)
class Field:
    """One key of a JSON object: its type, presence, default and bounds."""

    name: str
    kind: str                  # a key of _KIND_NAMES
    required: bool = False
    default: Any = None
    low: Optional[float] = None
    low_open: bool = False     # True: the value must be strictly greater than `low`
    high: Optional[float] = None
    why: str = ""              # why the bounds are what they are, for the error message
    item: str = ""             # object: section name; array/map: element kind or section
    min_items: int = 0
    choices: tuple[str, ...] = ()
    doc: str = ""


def _range(low: float, high: Optional[float] = None, low_open: bool = False,
           why: str = "") -> dict[str, Any]:
    return {"low": low, "high": high, "low_open": low_open, "why": why}


_POSITIVE = _range(0, low_open=True)
_WAVELENGTHS = _range(1, MAX_WAVELENGTHS, why=f"VLAN VID {VID_BASE}+λ must stay <= 4094")
_LENGTH = _range(0, MAX_LENGTH_KM, low_open=True, why="longer than the Earth's circumference")
_PORT = _range(MIN_FIBRE_PORT, MAX_PORT,
               why="ports 1 and 2 are reserved for the user and DC hosts")

SECTIONS: dict[str, tuple[Field, ...]] = {
    "topology": (
        Field("name", "string", doc="topology name; default: the file name without .json"),
        Field("description", "string", default="", doc="free text"),
        Field("defaults", "object", item="defaults", default={},
              doc="link attributes for links that do not give their own"),
        Field("nodes", "array", required=True, item="node", min_items=1, doc="the nodes"),
        Field("links", "array", required=True, item="link", doc="the fibres"),
    ),
    "defaults": (
        Field("wavelengths", "integer", default=40, **_WAVELENGTHS,
              doc="wavelengths per fibre (W)"),
        Field("capacity_gbps", "number", default=10.0, **_POSITIVE,
              doc="capacity of one wavelength, Gb/s"),
        Field("te_weight", "number", **_range(0), doc="TE weight; default: none (hop count)"),
        Field("jitter_ms", "number", default=0.0, **_range(0), doc="nominal jitter, ms"),
    ),
    "node": (
        Field("id", "id", required=True, doc="unique node id, e.g. \"0\""),
        Field("name", "string", doc="display name; default: the id"),
        Field("domain", "id", default="default", doc="administrative domain"),
        Field("dpid", "integer", **_range(1, MAX_DPID),
              doc="OpenFlow datapath id; default: id+1 for numeric ids, else position+1"),
        Field("lat", "number", **_range(-90, 90), doc="latitude, degrees"),
        Field("lon", "number", **_range(-180, 180), doc="longitude, degrees"),
        Field("dc", "object", item="dc", doc="the data centre attached to the node"),
    ),
    "dc": (
        Field("id", "id", doc="unique DC id; default: \"dc\" + node id"),
        Field("kind", "string", default="dc", choices=("dc", "edge"),
              doc="\"dc\" or \"edge\" (an edge cluster)"),
        Field("servers", "array", required=True, item="server", min_items=1, doc="its servers"),
    ),
    "server": (
        Field("id", "id", required=True, doc="unique server id"),
        Field("cpu", "integer", required=True, **_range(1), doc="cpu cores"),
        Field("memory_gb", "number", required=True, **_POSITIVE, doc="memory, GB"),
        Field("disk_gb", "number", required=True, **_POSITIVE, doc="disk, GB"),
    ),
    "link": (
        Field("id", "id", doc="unique link id; default: \"<a>-<b>\""),
        Field("a", "id", required=True, doc="one end (a node id)"),
        Field("b", "id", required=True, doc="the other end (a node id)"),
        Field("length_km", "number", required=True, **_LENGTH, doc="fibre length, km"),
        Field("wavelengths", "integer", **_WAVELENGTHS, doc="W; default: defaults.wavelengths"),
        Field("capacity_gbps", "number", **_POSITIVE,
              doc="per wavelength, Gb/s; default: defaults.capacity_gbps"),
        Field("te_weight", "number", **_range(0), doc="TE weight; default: defaults.te_weight"),
        Field("jitter_ms", "number", **_range(0), doc="default: defaults.jitter_ms"),
        Field("srlg", "array", item="id", default=(), doc="shared risk link groups"),
        Field("ports", "map", item="port", doc="node id -> switch port; default: next free "
              "port from 3 in file order"),
    ),
}

#: Element kinds that are not sections: the kind and bounds of one array/map element.
_ELEMENTS: dict[str, Field] = {
    "id": Field("", "id"),
    "port": Field("", "integer", **_PORT),
}


def key_path(path: str, key: str) -> str:
    """``$.links`` + ``a`` -> ``$.links.a``; keys that are not identifiers are quoted."""
    if _IDENTIFIER.match(key):
        return f"{path}.{key}"
    return f"{path}[{json.dumps(key)}]"


def describe(value: Any) -> str:
    """A short, printable description of a JSON value for error messages."""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, int):
        return f"integer {value}" if abs(value) < 10 ** 18 else "a very large integer"
    if isinstance(value, float):
        return f"number {json.dumps(value)}"   # NaN / Infinity spelt as in JSON
    if isinstance(value, str):
        return f"string {quote(value)}"
    if isinstance(value, (list, tuple)):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return f"a Python {type(value).__name__}"


def quote(text: str, limit: int = 40) -> str:
    """A string in double quotes, shortened, printable on any terminal encoding."""
    short = text if len(text) <= limit else text[:limit] + "..."
    # Lone surrogates cannot be encoded: spell them as escapes.
    return json.dumps(short, ensure_ascii=False).encode("utf-8", "backslashreplace").decode()


def check(value: Any, section: str, path: str, source: str) -> dict[str, Any]:
    """Check one object against `section`; its fields with defaults filled in."""
    fields = {f.name: f for f in SECTIONS[section]}
    _object(value, path, source)
    for key in value:
        if key not in fields:
            raise TopologyError(source, key_path(path, key), f"unknown field {quote(key)} "
                                f"(allowed: {', '.join(fields)})")
    result = {}
    for name, spec in fields.items():
        where = key_path(path, name)
        if name in value:
            result[name] = _value(value[name], spec, where, source)
        elif spec.required:
            raise TopologyError(source, where, "required field is missing")
        elif spec.kind == "object" and spec.default is not None:
            result[name] = check(dict(spec.default), spec.item, where, source)
        else:
            result[name] = spec.default
    return result


def _object(value: Any, path: str, source: str) -> None:
    if not isinstance(value, dict):
        raise TopologyError(source, path, f"expected an object, got {describe(value)}")
    for key in value:
        if not isinstance(key, str):   # only possible for dicts built in Python
            raise TopologyError(source, path, f"object keys must be strings, got {describe(key)}")
    for key in getattr(value, "duplicates", ()):   # set by JSONObject when parsing text
        raise TopologyError(source, key_path(path, key), "key given more than once")


def _value(value: Any, spec: Field, path: str, source: str) -> Any:
    kind = spec.kind
    if kind == "object":
        return check(value, spec.item, path, source)
    if kind in ("array", "map"):
        return _container(value, spec, path, source)
    if kind in ("string", "id"):
        return _string(value, spec, path, source)
    if kind == "integer" and (not isinstance(value, int) or isinstance(value, bool)):
        raise TopologyError(source, path, f"expected an integer, got {describe(value)}")
    checked = _number(value, path, source) if kind == "number" else value
    _bounds(checked, describe(value), spec, path, source)
    return checked


def _container(value: Any, spec: Field, path: str, source: str) -> Any:
    element = _ELEMENTS.get(spec.item)
    if spec.kind == "map":
        _object(value, path, source)
        return {key: _value(item, element, key_path(path, key), source)
                for key, item in value.items()}
    if not isinstance(value, (list, tuple)):
        raise TopologyError(source, path, f"expected an array, got {describe(value)}")
    if len(value) < spec.min_items:
        raise TopologyError(source, path, f"must have at least {spec.min_items} item(s)")
    if element is None:
        return [check(item, spec.item, f"{path}[{i}]", source) for i, item in enumerate(value)]
    return [_value(item, element, f"{path}[{i}]", source) for i, item in enumerate(value)]


def _string(value: Any, spec: Field, path: str, source: str) -> str:
    if not isinstance(value, str):
        raise TopologyError(source, path, f"expected {_KIND_NAMES[spec.kind]}, "
                            f"got {describe(value)}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:   # lone surrogates, as "\ud800" in JSON gives
        raise TopologyError(source, path, f"{quote(value)} is not valid Unicode text") from None
    if spec.kind == "id":
        if not value:
            raise TopologyError(source, path, "must be a non-empty string")
        if len(value) > MAX_ID_LENGTH:
            raise TopologyError(source, path, f"longer than {MAX_ID_LENGTH} characters")
        if not value.isprintable() or value != value.strip():
            raise TopologyError(source, path, f"{quote(value)} has control characters or "
                                "leading/trailing spaces")
    if spec.choices and value not in spec.choices:
        raise TopologyError(source, path, f"must be one of {', '.join(spec.choices)}, "
                            f"got {quote(value)}")
    return value


def _number(value: Any, path: str, source: str) -> float:
    # bool is an int subclass in Python but `true` is not a number in JSON.
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise TopologyError(source, path, f"expected a number, got {describe(value)}")
    try:
        number = float(value)
    except OverflowError:
        raise TopologyError(source, path, "number too large") from None
    if not math.isfinite(number):
        raise TopologyError(source, path, f"must be a finite number, got {describe(value)}")
    return number


def _bounds(value: float, shown: str, spec: Field, path: str, source: str) -> None:
    why = f" ({spec.why})" if spec.why else ""
    got = f", got {shown}"
    if spec.low is not None:
        if spec.low_open and not value > spec.low:
            raise TopologyError(source, path, f"must be greater than {_bound(spec.low)}{got}")
        if not spec.low_open and value < spec.low:
            raise TopologyError(source, path, f"must be at least {_bound(spec.low)}{got}{why}")
    if spec.high is not None and value > spec.high:
        raise TopologyError(source, path, f"must be at most {_bound(spec.high)}{got}{why}")


def _bound(limit: float) -> str:
    return f"{limit:g}" if isinstance(limit, float) else str(limit)
