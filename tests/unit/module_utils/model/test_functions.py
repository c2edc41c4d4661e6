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


def test_empty_or_missing_directory(tmp_path):
    assert fnreg.Registry.load(str(tmp_path / "none")).names() == []


@pytest.mark.parametrize("text,message", [
    ("stages: [on_xdp_bogus]\n", "stages must be a non-empty list"),
    ("stage: [on_xdp_tx]\n", "unknown key 'stage'"),
    ("config:\n  x: {type: float}\n", "type must be one of"),
    ("config:\n  x: {type: int, requires: {y: [1]}}\n", "requires names 'y'"),
    ("name: other\n", "does not match the file name"),
    ("config:\n  x: {type: list, elements: list}\n", "lists do not nest"),
])
def test_broken_schemas_are_refused(tmp_path, text, message):
    (tmp_path / "f.yml").write_text(text)
    with pytest.raises(fnreg.SchemaError) as info:
        fnreg.Registry.load(str(tmp_path))
    assert message in str(info.value)


def test_user_source():
    assert fnreg.is_user_source("fn/mine.c")
    assert not fnreg.is_user_source("acl")
