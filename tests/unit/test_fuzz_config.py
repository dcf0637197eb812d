"""Fuzzing the config loaders: whatever the text, ``sc_app.config.parse_string`` and
``ac_app.config.parse_string`` give settings or raise ConfigError, never anything else.

Two generators: any text at all (most of it not INI), and INI built from the real sections and
option names with hostile values (huge and negative numbers, NaN, unicode, interpolation, odd
token lists, topology names that are directories or missing files, duplicate keys and
sections). Topologies themselves are fuzzed by test_topology_fuzz.py. Bounded and
derandomized for CI (CSO_FUZZ_EXAMPLES raises the count for a deep run).
"""
from __future__ import annotations

import os
from typing import Any, Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ac_app import config as ac_config
from cso_base.config import ConfigError
from sc_app import config as sc_config

FUZZ = settings(max_examples=int(os.environ.get("CSO_FUZZ_EXAMPLES", "150")), deadline=None,
                derandomize=True, database=None, suppress_health_check=list(HealthCheck))

LOADERS: dict[str, tuple[Callable[[str], Any], tuple[str, ...], str]] = {
    "sc": (sc_config.parse_string, ("sc", "DEFAULT"),
           "[sc]\nac_tokens = ac1:token-ac1\ntopology = ring\n"),
    "ac": (ac_config.parse_string, ("ac",),
           "[ac]\nsc_token = t\ntopology = ring\nusers = alice:user:a\n"),
}
OPTION_NAMES = sorted({f.name for fields in (*sc_config.SCHEMA.values(),
                                             *ac_config.SCHEMA.values()) for f in fields})
TOPOLOGIES = ["nsfnet", "ring", "", " ", "/", ".", "..", "/dev/null", "/nonexistent.json",
              "topologies", "../../etc/hostname", "nsfnet.json", "NSFNET", "ring\x00"]
VALUES = st.one_of(
    st.sampled_from(["0", "-1", "1", "65535", "65536", "1e309", "-1e309", "nan", "inf",
                     "9" * 400, "0x10", "1_000", "true", "off", "", " ", "%(k)s", "%%",
                     "$HOME", "a:b", "a:b, a:c", "a:b, c:b", ":", "a:", "a:b:c",
                     "a:user:t, b:provider-manager:t", "a:root:t", "dc1:ftp://x",
                     "dc1:http://x, dc99:http://y", "http://", "GLB", "RB", "first-fit",
                     "te", "ac-tokens", "none", "\u00e9\u00e8", "\U0001f600", "a\tb"]),
    st.sampled_from(TOPOLOGIES),
    st.text(max_size=12))
KEYS = st.one_of(st.sampled_from(OPTION_NAMES), st.text(max_size=8))
SECTIONS = st.sampled_from(["sc", "ac", "DEFAULT", "other", "SC", " sc", ""])


def lines(sections: Any) -> st.SearchStrategy[str]:
    """INI text: a few sections with a few ``key = value`` (sometimes ``key: value``) lines."""
    line = st.builds(lambda k, sep, v: f"{k}{sep}{v}", KEYS,
                     st.sampled_from([" = ", "=", ": ", " "]), VALUES)
    section = st.builds(lambda name, body: f"[{name}]\n" + "\n".join(body) + "\n",
                        sections, st.lists(line, max_size=6))
    junk = st.sampled_from(["", "\n", "# comment\n", "  indented = x\n", "[\n", "[sc\n",
                            "\ufeff", "\r\n", "key = value\n"])
    return st.builds(lambda parts, head: head + "".join(parts), st.lists(section, max_size=3),
                     junk)


def only_config_errors(parse: Callable[[str], Any], text: str) -> None:
    """``parse(text)`` returns settings or raises ConfigError with its reasons."""
    try:
        parse(text)
    except ConfigError as exc:
        assert str(exc).strip(), f"ConfigError without a reason for {text!r}"


@pytest.mark.parametrize("which", sorted(LOADERS))
@FUZZ
@given(text=st.text(max_size=200))
def test_any_text_gives_settings_or_config_error(which: str, text: str) -> None:
    only_config_errors(LOADERS[which][0], text)


@pytest.mark.parametrize("which", sorted(LOADERS))
@FUZZ
@given(data=st.data())
def test_hostile_ini_gives_settings_or_config_error(which: str, data: Any) -> None:
    parse, sections, _good = LOADERS[which]
    text = data.draw(lines(st.one_of(st.sampled_from(sections), SECTIONS)), label="ini")
    only_config_errors(parse, text)


@pytest.mark.parametrize("which", sorted(LOADERS))
@FUZZ
@given(key=st.sampled_from(OPTION_NAMES), value=VALUES)
def test_one_hostile_value_in_a_good_config(which: str, key: str, value: str) -> None:
    """A valid config with one option overridden (appended: the file's last word)."""
    parse, sections, good = LOADERS[which]
    lines_ = [line for line in good.splitlines() if not line.startswith(f"{key} ")]
    only_config_errors(parse, "\n".join(lines_) + f"\n{key} = {value}\n")


@pytest.mark.parametrize("which", sorted(LOADERS))
def test_the_good_configs_are_good(which: str) -> None:
    """The base of the one-value fuzz parses, so the fuzz tests values, not the base."""
    parse, _sections, good = LOADERS[which]
    assert parse(good) is not None


@pytest.mark.parametrize("which", sorted(LOADERS))
@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_hostile_topology_names(which: str, topology: str) -> None:
    """Directories, missing files, empty names, NUL bytes: settings or ConfigError."""
    parse, _sections, good = LOADERS[which]
    text = good.replace("topology = ring", f"topology = {topology}")
    only_config_errors(parse, text)
