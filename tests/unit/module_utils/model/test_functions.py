"""The registry of shipped functions and the checking of their config."""
import pytest

from ansible_collections.mizar.transit.plugins.module_utils.model import functions as fnreg
from ansible_collections.mizar.transit.plugins.module_utils.model.errors import ErrorList


def test_acl_schema_ships():
    spec = fnreg.default_registry().get("acl")
    assert spec is not None
    assert spec.stages == ("on_xdp_redirect", "on_xdp_tx")
    rule = spec.options["rules"]["options"]
    assert sorted(rule) == ["action", "dst", "port", "protocol", "src", "vpc"]
    assert rule["src"]["default"] == "0.0.0.0/0"


def test_acl_config_normalized():
    spec = fnreg.default_registry().get("acl")
    errors = ErrorList()
    config = {"rules": [{"vpc": "blue", "dst": "10.1.2.0/24", "protocol": "udp", "port": 53, "action": "drop"},
                        {"vpc": "blue", "src": "10.1.1.0/24", "dst": "10.1.2.0/24", "protocol": "any",
                         "action": "drop"}]}
    out = fnreg.check_config(config, spec, "cfg", errors, fnreg.ConfigContext(["blue"]))
    assert list(errors) == []
    assert out == {"rules": [
        {"vpc": "blue", "src": "0.0.0.0/0", "dst": "10.1.2.0/24", "protocol": "udp", "port": 53, "action": "drop"},
        {"vpc": "blue", "src": "10.1.1.0/24", "dst": "10.1.2.0/24", "protocol": "any", "action": "drop"}]}


def test_registry_reads_sources_and_sidecars(tmp_path):
    (tmp_path / "count.bpf.c").write_text("// counts\n")
    (tmp_path / "nat.yml").write_text("stages: [on_xdp_tx]\nconfig:\n  to: {type: ipv4, required: true}\n")
    reg = fnreg.Registry.load(str(tmp_path))
    assert reg.names() == ["count", "nat"]
    assert reg.get("count").options is None and reg.get("count").stages == fnreg.STAGES
    assert reg.get("count").source.endswith("count.bpf.c")
    assert reg.get("nat").source is None
    errors = ErrorList()
    assert fnreg.check_config({"to": "10.0.0.300"}, reg.get("nat"), "c", errors, fnreg.ConfigContext()) is None
    assert [e.path for e in errors] == ["c.to"]


def test_shipped_functions_declare_their_counters():
    """What transit_info is given: each function's per-CPU counters map and
    the names of its slots, in slot order (enum mzr_acl_stat, mzr_rl_stat)."""
    declared = fnreg.default_registry().counter_maps()
    assert declared["acl"] == {"map": "mzr_acl_stats", "counters": ["seen", "dropped"]}
    assert declared["ratelimit"] == {"map": "mzr_rl_stats", "counters": ["passed", "dropped"]}


def test_a_function_without_counters_declares_none(tmp_path):
    (tmp_path / "nat.yml").write_text("stages: [on_xdp_tx]\n")
    (tmp_path / "cnt.yml").write_text("counters:\n  map: cnt_stats\n  slots:\n    - {name: a, description: A}\n"
                                      "    - {name: b}\n")
    reg = fnreg.Registry.load(str(tmp_path))
    assert reg.get("nat").counters is None
    assert reg.counter_maps() == {"cnt": {"map": "cnt_stats", "counters": ["a", "b"]}}


def test_empty_or_missing_directory(tmp_path):
    assert fnreg.Registry.load(str(tmp_path / "none")).names() == []


@pytest.mark.parametrize("text,message", [
    ("stages: [on_xdp_bogus]\n", "stages must be a non-empty list"),
    ("stage: [on_xdp_tx]\n", "unknown key 'stage'"),
    ("config:\n  x: {type: float}\n", "type must be one of"),
    ("config:\n  x: {type: int, requires: {y: [1]}}\n", "requires names 'y'"),
    ("name: other\n", "does not match the file name"),
    ("config:\n  x: {type: list, elements: list}\n", "lists do not nest"),
    ("counters: [seen]\n", "counters is a mapping"),
    ("counters: {map: Stats, slots: [{name: seen}]}\n", "counters.map: the name of the map"),
    ("counters: {map: f_stats, slots: []}\n", "counters.slots: a non-empty list"),
    ("counters: {map: f_stats, slot: [{name: seen}]}\n", "unknown key 'slot'"),
    ("counters: {map: f_stats, slots: [{name: seen}, {name: seen}]}\n", "slots[1].name: 'seen' names an earlier"),
    ("counters: {map: f_stats, slots: [{name: 1seen}]}\n", "slots[0].name: lower-case letters"),
    ("counters: {map: f_stats, slots: [{name: seen, help: x}]}\n", "slots[0]: unknown key 'help'"),
])
def test_broken_schemas_are_refused(tmp_path, text, message):
    (tmp_path / "f.yml").write_text(text)
    with pytest.raises(fnreg.SchemaError) as info:
        fnreg.Registry.load(str(tmp_path))
    assert message in str(info.value)


def test_user_source():
    assert fnreg.is_user_source("fn/mine.c")
    assert not fnreg.is_user_source("acl")
