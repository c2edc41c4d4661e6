"""Endpoint MTU: derived from the substrate NIC (its MTU less the 50 bytes of
Geneve encapsulation; the NIC's own MTU for a bypass-decap endpoint), an
explicit one checked against that, the inventory's per-endpoint mtu, and
the NIC's MTU in if_cfg (the agent's path MTU)."""
import re

import pytest

from ansible_collections.mizar.transit.plugins.module_utils.bpf import abi
from ansible_collections.mizar.transit.plugins.module_utils.ops.map_state import Names, desired_state
from ansible_collections.mizar.transit.plugins.module_utils.ops.endpoint import EndpointError, EndpointSpec, max_mtu
from ansible_collections.mizar.transit.plugins.module_utils.model.errors import format_errors
from ansible_collections.mizar.transit.plugins.module_utils.model.defaults import DEFAULT_PIN_DIR
from ansible_collections.mizar.transit.plugins.module_utils.model.render import render_inventory
from ansible_collections.mizar.transit.plugins.module_utils.model.validate import validate

from unit_inventory import base, rendering


def spec(**kw):
    args = dict(netns="blue-web1", ip="10.1.1.10", prefixlen=24, mac="02:00:00:00:01:0a", gateway="10.1.1.1",
                substrate_interface="eth0")
    args.update(kw)
    return EndpointSpec("blue/web/web1", "mzweb1", DEFAULT_PIN_DIR, **args)


@pytest.mark.parametrize("nic,bypass,want", [(1500, False, 1450), (9000, False, 8950), (1400, False, 1350),
                                             (1500, True, 1500), (9000, True, 9000)])
def test_derived_from_the_nic(nic, bypass, want):
    assert max_mtu(nic, bypass) == want
    s = spec(bypass_decap=bypass)
    assert s.mtu is None
    assert s.resolve_mtu(nic) == want and s.mtu == want


def test_explicit_mtu_within_the_limit_is_kept():
    assert spec(mtu=1400).resolve_mtu(1500) == 1400
    assert spec(mtu=1450).resolve_mtu(1500) == 1450
    assert spec(mtu=1500, bypass_decap=True).resolve_mtu(1500) == 1500


def test_explicit_mtu_above_the_limit_names_endpoint_field_and_nic():
    with pytest.raises(EndpointError) as e:
        spec(mtu=1451).resolve_mtu(1500)
    assert str(e.value) == ("endpoint blue/web/web1: mtu: 1451 is above 1450, the most that fits the substrate "
                            "NIC eth0 (MTU 1500) after 50 bytes of Geneve encapsulation; lower it, or leave mtu "
                            "out to derive it")
    with pytest.raises(EndpointError) as e:
        spec(mtu=9000, bypass_decap=True).resolve_mtu(1500)
    assert "mtu: 9000 is above 1500" in str(e.value) and "bypass_decap endpoint receives whole tunnel" in str(e.value)


def test_a_nic_too_small_for_geneve():
    with pytest.raises(EndpointError) as e:
        spec().resolve_mtu(100)
    assert str(e.value).startswith("endpoint blue/web/web1: substrate_interface: eth0 has MTU 100: too small")


def test_no_nic_named_keeps_the_old_default():
    s = spec(substrate_interface=None)
    assert s.resolve_mtu(None) == 1450
    assert spec(substrate_interface=None, mtu=9000).resolve_mtu(None) == 9000


def test_spec_checks_its_fields():
    with pytest.raises(EndpointError, match="endpoint blue/web/web1: mtu: 40 is not an MTU"):
        spec(mtu=40)
    with pytest.raises(EndpointError, match="endpoint blue/web/web1: substrate_interface: "):
        spec(substrate_interface="a/b")


# ------------------------------------------------------------------ inventory

def _ep(inv, k):
    return inv["mizar_vpcs"][0]["networks"][0]["endpoints"][k]


def test_inventory_mtu_is_rendered_for_its_host():
    inv = base()
    _ep(inv, 0)["mtu"] = 1400
    r = render_inventory(inv)
    local = dict((e["name"], e) for e in r["h1"]["local_endpoints"])
    assert local["vpc1/net1/ep1"]["mtu"] == 1400
    assert "mtu" not in local["vpc1/net2/ep3"], "no mtu: derived on the host"


@pytest.mark.parametrize("k,value,pattern", [
    (0, True, r"mtu must be an integer, not a boolean"),
    (0, "1400", r"mtu must be an integer"),
    (0, 67, r"67 is not an MTU \(68..65535\)"),
    (0, 70000, r"70000 is not an MTU"),
    (1, 1400, r"mtu applies to an endpoint with a netns"),   # adopted interface
    (2, 1400, r"mtu applies to an endpoint with a netns"),   # scaled endpoint
])
def test_inventory_mtu_is_checked(k, value, pattern):
    inv = base()
    _ep(inv, k)["mtu"] = value
    errors = validate(inv)
    assert [e.path for e in errors] == ["mizar_vpcs[0].networks[0].endpoints[%d].mtu" % k], format_errors(errors)
    assert re.search(pattern, errors[0].message), errors[0].message


# ------------------------------------------------------------------ if_cfg

def _rendered():
    return rendering("h1")


def test_if_cfg_carries_the_nic_mtu_and_follows_its_changes():
    links = {"eth0": 2}
    st = desired_state(_rendered(), links.get, "h1", {"eth0": 1500}.get)
    assert st["if_cfg"]["mtu"] == 1500 and st["if_cfg"]["ifindex"] == 2
    jumbo = desired_state(_rendered(), links.get, "h1", {"eth0": 9000}.get)
    assert jumbo["if_cfg"]["mtu"] == 9000
    assert abi.encode_if_cfg(st["if_cfg"]) != abi.encode_if_cfg(jumbo["if_cfg"]), "an MTU change is a change"
    assert abi.encode_if_cfg(st["if_cfg"]) == abi.encode_if_cfg(
        desired_state(_rendered(), links.get, "h1", {"eth0": 1500}.get)["if_cfg"]), "idempotent"
    assert abi.decode_if_cfg(abi.encode_if_cfg(jumbo["if_cfg"]))["mtu"] == 9000
    assert Names(_rendered()).entry("if_cfg", jumbo["if_cfg"]).endswith("ifindex 2 mtu 9000")


def test_if_cfg_mtu_unknown_without_a_reader():
    st = desired_state(_rendered(), {"eth0": 2}.get, "h1")
    assert st["if_cfg"]["mtu"] == 0
