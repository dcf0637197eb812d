"""The SC's ``[sc]`` configuration schema: accepted and rejected configs, from inline strings."""
import json
import os
import textwrap

import pytest
from oslo_config import cfg

from sc_app import config

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def parse(text: str) -> config.Settings:
    return config.parse_string(textwrap.dedent(text), source="test.conf")


def errors(text: str) -> list[str]:
    with pytest.raises(config.ConfigError) as info:
        parse(text)
    return info.value.errors


def test_empty_config_gives_the_documented_defaults():
    settings = parse("")
    assert settings.topology.name == "nsfnet" and len(settings.topology.nodes) == 14
    assert (settings.state_dir, settings.k, settings.path_order,
            settings.wavelength_policy) == ("./state/sc", 5, "hops", "first-fit")
    assert (settings.rest_port, settings.ofp_port, settings.observe_links) == (8080, 6653, True)
    assert dict(settings.ac_tokens) == {}


def test_full_config_is_read_with_types():
    settings = parse("""
        [DEFAULT]
        wsapi_port = 9090
        ofp_tcp_listen_port = 16653
        some_other_ryu_option = whatever

        [sc]
        topology = nsfnet
        state_dir = /tmp/sc-state
        ac_tokens = demo-ac:demo-ac-token, other-ac:other-ac-token
        k = 3
        path_order = te
        wavelength_policy = most-used
        barrier_timeout = 0.5
        link_timeout = 4
        alarm_history = 10
    """)
    assert dict(settings.ac_tokens) == {"demo-ac": "demo-ac-token", "other-ac": "other-ac-token"}
    assert (settings.k, settings.path_order, settings.wavelength_policy) == (3, "te", "most-used")
    assert (settings.barrier_timeout, settings.link_timeout) == (0.5, 4.0)
    assert (settings.rest_port, settings.ofp_port, settings.alarm_history) == (9090, 16653, 10)
    assert settings.sources == ("test.conf",)


def test_settings_are_frozen():
    settings = parse("[sc]\nac_tokens = a:t1\n")
    with pytest.raises(AttributeError):
        settings.k = 7
    with pytest.raises(TypeError):
        settings.ac_tokens["b"] = "t2"


def test_ac_for_token_finds_the_owner_only():
    settings = parse("[sc]\nac_tokens = a:token-a, b:token-b\n")
    assert settings.ac_for_token("token-b") == "b"
    assert settings.ac_for_token("token-") is None
    assert settings.ac_for_token("") is None


def test_topology_may_be_a_file(tmp_path):
    path = tmp_path / "two.json"
    path.write_text(json.dumps({"name": "two", "nodes": [{"id": "0"}, {"id": "1"}],
                                "links": [{"a": "0", "b": "1", "length_km": 10}]}))
    assert parse(f"[sc]\ntopology = {path}\n").topology.name == "two"


@pytest.mark.parametrize("text, expected", [
    ("[sc]\nkk = 3\n", "test.conf: [sc] kk: unknown option (did you mean 'k'?)"),
    ("[sc]\nK = 3\n", "test.conf: [sc] K: unknown option (did you mean 'k'?)"),
    ("[sc]\nzzz = 1\n", "test.conf: [sc] zzz: unknown option (known: ac_tokens,"),
    ("[sc]\nk = three\n", "test.conf: [sc] k: invalid literal for int()"),
    ("[sc]\nk = 0\n", "test.conf: [sc] k: Should be greater than or equal to 1"),
    ("[sc]\nk =\n", "test.conf: [sc] k: a value is required"),
    ("[sc]\nbarrier_timeout = soon\n", "test.conf: [sc] barrier_timeout: could not convert"),
    ("[sc]\nbarrier_timeout = 0\n", "test.conf: [sc] barrier_timeout: Should be greater"),
    ("[sc]\nbarrier_timeout = nan\n", "test.conf: [sc] barrier_timeout: must be a finite"),
    ("[sc]\npath_order = shortest\n",
     "test.conf: [sc] path_order: Valid values are [hops, length, te], but found 'shortest'"),
    ("[sc]\nwavelength_policy = best-fit\n", "test.conf: [sc] wavelength_policy: Valid values"),
    ("[DEFAULT]\nwsapi_port = 99999\n", "test.conf: [DEFAULT] wsapi_port: Should be less"),
    ("[DEFAULT]\nobserve_links = perhaps\n", "test.conf: [DEFAULT] observe_links: Unexpected"),
    ("[sc]\nk = 1\nk = 2\n", "test.conf: [sc] k: given twice (line 3)"),
    ("[sc]\n[sc]\n", "test.conf: [sc]: section given twice"),
    ("k = 1\n", "test.conf: File contains no section headers."),
    ("[sc]\ntopology = no-such-net\n",
     "test.conf: [sc] topology: no-such-net: $: no such topology file or name"),
    ("[sc]\nstate_dir = \"\"\n", None),  # quotes are a value for configparser: accepted
    ("[sc]\nstate_dir =\n", "test.conf: [sc] state_dir: must not be empty"),
])
def test_rejected_values_name_file_section_and_field(text, expected):
    if expected is None:
        parse(text)
        return
    found = errors(text)
    assert any(error.startswith(expected) for error in found), found


@pytest.mark.parametrize("tokens, expected", [
    ("demo-ac", "'demo-ac' is not AC_NAME:TOKEN with both parts non-empty"),
    ("demo-ac:", "'demo-ac:' is not AC_NAME:TOKEN with both parts non-empty"),
    (":token", "':token' is not AC_NAME:TOKEN with both parts non-empty"),
    ("a:one, a:two", "AC 'a' is given more than one token"),
    ("a:same, b:same", "AC 'b' reuses another AC's token"),
])
def test_bad_tokens_are_rejected(tokens, expected):
    assert errors(f"[sc]\nac_tokens = {tokens}\n") == [f"test.conf: [sc] ac_tokens: {expected}"]


def test_every_problem_is_reported_at_once():
    found = errors("[sc]\nk = 0\nfoo = 1\nac_tokens = x\ntopology = nowhere\n")
    assert [error.split(":")[1].strip() for error in found] == [
        "[sc] foo", "[sc] k", "[sc] ac_tokens", "[sc] topology"]


def test_a_bad_topology_file_is_reported_with_the_loader_error(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    (error,) = errors(f"[sc]\ntopology = {path}\n")
    assert error.startswith("test.conf: [sc] topology: ")
    assert str(path) in error


def test_later_files_override_earlier_ones(tmp_path):
    first, second = tmp_path / "a.conf", tmp_path / "b.conf"
    first.write_text("[sc]\nk = 2\npath_order = te\n")
    second.write_text("[sc]\nk = 4\n")
    settings = config.check_files([str(first), str(second)])
    assert (settings.k, settings.path_order) == (4, "te")


def test_an_unreadable_file_is_an_error(tmp_path):
    with pytest.raises(config.ConfigError) as info:
        config.check_file(str(tmp_path / "missing.conf"))
    assert info.value.errors == [f"{tmp_path / 'missing.conf'}: cannot read: "
                                 "No such file or directory"]


def test_the_demo_config_is_valid_and_has_the_demo_token():
    settings = config.check_file(os.path.join(REPO, "etc", "sc.conf"))
    assert settings.ac_for_token("demo-ac-token") == "demo-ac"
    assert len(settings.ac_tokens) >= 2
    assert settings.topology.name == "nsfnet"


def oslo_conf(path, ryu_opts: bool = True) -> cfg.ConfigOpts:
    conf = cfg.ConfigOpts()
    config.register_opts(conf)
    config.register_opts(conf)  # idempotent
    if ryu_opts:
        conf.register_cli_opt(cfg.IntOpt("wsapi-port", default=8080))  # as ryu.app.wsgi does
    conf(args=["--config-file", str(path)])
    return conf


def test_oslo_path_gives_the_same_settings(tmp_path):
    path = tmp_path / "sc.conf"
    path.write_text("[DEFAULT]\nwsapi_port = 9191\n[sc]\nk = 2\nac_tokens = a:t\n")
    from_conf = config.settings_from_conf(oslo_conf(path))
    assert from_conf == config.check_file(str(path))
    assert (from_conf.rest_port, from_conf.k) == (9191, 2)
    # [DEFAULT] options are Ryu's: where Ryu has not registered one, its default holds
    assert config.settings_from_conf(oslo_conf(path, ryu_opts=False)).rest_port == 8080


def test_oslo_path_reports_bad_values(tmp_path):
    path = tmp_path / "sc.conf"
    path.write_text("[sc]\npath_order = sideways\n")
    with pytest.raises(config.ConfigError) as info:
        config.settings_from_conf(oslo_conf(path))
    assert info.value.errors[0].startswith("[sc] path_order: ")


def test_the_operator_guide_documents_every_option_with_its_default():
    with open(os.path.join(REPO, "docs", "operator-guide.md"), encoding="utf-8") as handle:
        rows = {line.split("|")[1].strip(" `"): line for line in handle
                if line.startswith("| `")}
    for field in config.SC_FIELDS + config.RYU_FIELDS:
        assert field.name in rows, field.name
        if field.default not in ([], "", True):
            assert f"`{field.default}`" in rows[field.name], field.name
