"""INI configuration as a schema, shared by the SC (``[sc]``) and the AC (``[ac]``).

A `Field` declares an option's name, oslo.config type (parser and range), default and
help. `read_ini` converts the known keys of one file with those types, rejects unknown
keys in the sections it owns (with a "did you mean" hint) and reports every problem with
the file, section and option; later files override earlier ones.
"""
from __future__ import annotations

import configparser
import difflib
import math
import sys
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

from oslo_config import types

from cso_base.cli import NEGATIVE, Parser, parse_args


@dataclass(frozen=True)
class Field:
    """One configuration option: name, oslo type (parser and range), default and help."""

    name: str
    type: types.ConfigType
    default: Any
    help: str


class ConfigError(ValueError):
    """A configuration is invalid; ``errors`` lists every problem, each naming where it is."""

    def __init__(self, errors: Sequence[str]):
        super().__init__("\n".join(errors))
        self.errors = list(errors)


def read_ini(text: str, source: str, schema: Mapping[str, Sequence[Field]],
             strict: Iterable[str], values: dict[str, Any], where: dict[str, str]) -> list[str]:
    """Convert the keys of ``schema``'s sections into ``values``; return the errors found.

    ``schema`` maps a section name to its fields; in the ``strict`` sections an unknown key
    is an error (other sections may hold options that belong to someone else, e.g. Ryu's).
    """
    # DEFAULT as an ordinary section: configparser would otherwise copy its keys everywhere.
    parser = configparser.ConfigParser(default_section="\0", interpolation=None, strict=True)
    parser.optionxform = str  # oslo.config keys are case-sensitive: `K` is not `k`
    try:
        parser.read_string(text, source=source)
    except configparser.DuplicateOptionError as exc:
        return [f"{source}: [{exc.section}] {exc.option}: given twice (line {exc.lineno})"]
    except configparser.DuplicateSectionError as exc:
        return [f"{source}: [{exc.section}]: section given twice (line {exc.lineno})"]
    except configparser.Error as exc:
        return [f"{source}: {one_line(exc)}"]
    errors = []
    for section in strict:
        if not parser.has_section(section):
            continue
        known = {f.name for f in schema[section]}
        for key in parser.options(section):
            if key not in known:
                close = difflib.get_close_matches(key.lower(), known, n=1)
                hint = (f"did you mean {close[0]!r}?" if close
                        else f"known: {', '.join(sorted(known))}")
                errors.append(f"{source}: [{section}] {key}: unknown option ({hint})")
    for section, fields in schema.items():
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


def read_files(paths: Sequence[str], schema: Mapping[str, Sequence[Field]],
               strict: Iterable[str]) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    """Defaults overridden by each file in turn: (values, where each came from, errors)."""
    texts, errors = [], []
    for path in paths:
        try:
            with open(path, encoding="utf-8") as handle:
                texts.append((path, handle.read()))
        except OSError as exc:
            errors.append(f"{path}: cannot read: {exc.strerror or exc}")
    values, where, more = read_texts(texts, schema, strict)
    return values, where, errors + more


def read_texts(texts: Sequence[tuple[str, str]], schema: Mapping[str, Sequence[Field]],
               strict: Iterable[str]) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    """`read_files` for (source, text) pairs already in memory."""
    strict = tuple(strict)
    values = {f.name: f.default for fields in schema.values() for f in fields}
    where = {f.name: f"(default) [{section}] {f.name}"
             for section, fields in schema.items() for f in fields}
    errors: list[str] = []
    for source, text in texts:
        errors.extend(read_ini(text, source, schema, strict, values, where))
    return values, where, errors


def check_config_command(argv: Sequence[str], prog: str, what: str, files_help: str,
                         check_files: Callable[[Sequence[str]], Any],
                         summary: Callable[[Any], str]) -> int:
    """``<prog> check-config FILE...``: validate offline; 0 when valid, 1 otherwise.

    ``check_files`` builds the settings or raises `ConfigError`, whose every problem goes to
    stderr; valid files get one line on stdout, ``summary`` saying what they configure.
    """
    parser = Parser(prog=f"{prog} check-config",
                    description=f"Validate {what} config files without starting.")
    parser.add_argument("files", nargs="+", metavar="FILE", help=files_help)
    args = parse_args(parser, argv)
    if isinstance(args, int):                # --help or a usage error, already reported
        return args
    section, errors = what.lower(), []
    try:
        settings = check_files(args.files)
    except ConfigError as exc:
        errors = list(exc.errors)
    # A file without the section configures nothing of ours: most likely the wrong file.
    errors += [f"{path}: no [{section}] section (the {what}'s options are there)"
               for path in args.files if _lacks_section(path, section)]
    if errors:
        for error in errors:
            print(error, file=sys.stderr)
        return NEGATIVE
    print(f"{', '.join(args.files)}: OK ({summary(settings)})")
    return 0


def _lacks_section(path: str, section: str) -> bool:
    """True when ``path`` is a readable INI file without ``[section]`` (else its errors tell)."""
    parser = configparser.ConfigParser(default_section="\0", interpolation=None, strict=False)
    try:
        read = parser.read(path, encoding="utf-8")
    except (OSError, UnicodeError, configparser.Error):
        return False
    return bool(read) and not parser.has_section(section)


def parse_tokens(items: Iterable[str], location: str, errors: list[str],
                 what: str = "AC") -> dict[str, str]:
    """``NAME:TOKEN`` items -> {NAME: TOKEN}; names and tokens non-empty and unique."""
    tokens: dict[str, str] = {}
    for item in items:
        name, sep, token = (part.strip() for part in item.partition(":"))
        if not sep or not name or not token:
            errors.append(f"{location}: {item!r} is not {what}_NAME:TOKEN with both parts "
                          f"non-empty")
        elif any(c.isspace() for c in token):
            errors.append(f"{location}: the token of {what} {name!r} contains whitespace")
        elif name in tokens:
            errors.append(f"{location}: {what} {name!r} is given more than one token")
        elif token in tokens.values():
            errors.append(f"{location}: {what} {name!r} reuses another {what}'s token")
        else:
            tokens[name] = token
    return tokens


def one_line(exc: Exception) -> str:
    """An exception's text on one line."""
    return " ".join(str(exc).split())
