"""VPC peering in the model: validation (one defect, its path), the peer
routes each divider renders, and where packets go through them (the
forwarding model)."""
import re

import pytest

from ansible_collections.mizar.transit.plugins.module_utils.model import capacity
from ansible_collections.mizar.transit.plugins.module_utils.model.errors import format_errors
from ansible_collections.mizar.transit.plugins.module_utils.model.forwarding import ForwardingModel
from ansible_collections.mizar.transit.plugins.module_utils.model.render import render_inventory
from ansible_collections.mizar.transit.plugins.module_utils.model.validate import validate

from unit_inventory import assert_one_defect, base, ip_of

RED = {"name": "red", "vni": 300, "cidr": "10.2.0.0/16", "dividers": ["h2"], "networks": [
    {"name": "net1", "cidr": "10.2.1.0/24", "bouncers": ["h2"], "endpoints": [
        {"name": "r1", "ip": "10.2.1.5", "host": "h1", "netns": "r1"},
    ]},
]}


def peered():
    """base() (vpc1 10.1.0.0/16 divided by h3; vpc2 reusing 10.1.0.0/16,
    no divider) with VPC red (10.2.0.0/16, divided by h2), peered with vpc1."""
    inv = base()
    inv["mizar_vpcs"].append(dict(RED))
    inv["mizar_vpc_peerings"] = [{"name": "vpc1-red", "vpcs": ["vpc1", "red"]}]
    return inv


def _pe(inv, i=0):
    return inv["mizar_vpc_peerings"][i]


def _vpc(inv, name):
    return [v for v in inv["mizar_vpcs"] if v["name"] == name][0]


def _with_vpc2_dividers(inv):
    _vpc(inv, "vpc2")["dividers"] = ["h1"]
    return inv


def _second_peering(inv, name):
    """Also peer red with a green VPC of its own (10.3.0.0/16, divided by h1)."""
    inv["mizar_vpcs"].append({"name": "green", "vni": 400, "cidr": "10.3.0.0/16", "dividers": ["h1"]})
    inv["mizar_vpc_peerings"].append({"name": name, "vpcs": ["red", "green"]})


CASES = [
    ("unknown-vpc", lambda inv: _pe(inv).update(vpcs=["vpc1", "rde"]), "mizar_vpc_peerings[0].vpcs[1]",
     r"no VPC named 'rde' in mizar_vpcs \(did you mean \"red\"\?\)"),
    ("with-itself", lambda inv: _pe(inv).update(vpcs=["red", "red"]), "mizar_vpc_peerings[0].vpcs[1]",
     r"VPC red is peered with itself"),
    ("same-pair-twice", lambda inv: inv["mizar_vpc_peerings"].append({"name": "again", "vpcs": ["red", "vpc1"]}),
     "mizar_vpc_peerings[1].vpcs", r"VPCs red and vpc1 are already peered by mizar_vpc_peerings\[0\]"),
    ("overlapping-cidrs", lambda inv: _with_vpc2_dividers(inv)["mizar_vpc_peerings"].append(
        {"name": "v1-v2", "vpcs": ["vpc1", "vpc2"]}), "mizar_vpc_peerings[1].vpcs[1]",
     r"the CIDR 10.1.0.0/16 of VPC vpc2 overlaps the CIDR 10.1.0.0/16 of VPC vpc1: peered VPCs must not overlap"),
    ("two-peers-overlap", lambda inv: _with_vpc2_dividers(inv)["mizar_vpc_peerings"].append(
        {"name": "red-v2", "vpcs": ["red", "vpc2"]}), "mizar_vpc_peerings[1].vpcs[1]",
     r"the CIDR 10.1.0.0/16 of VPC vpc2 overlaps the CIDR 10.1.0.0/16 of VPC vpc1, which "
     r"mizar_vpc_peerings\[0\] also peers with red: the dividers of red could not tell"),
    ("no-dividers", lambda inv: inv["mizar_vpc_peerings"].append({"name": "red-v2", "vpcs": ["red", "vpc2"]}),
     "mizar_vpc_peerings[1].vpcs[1]", r"VPC vpc2 has no dividers: traffic crosses a peering at the dividers"),
    ("shared-divider", lambda inv: _vpc(inv, "red").update(dividers=["h2", "h3"]), "mizar_vpc_peerings[0].vpcs",
     r"VPCs vpc1 and red share the divider h3: a packet crosses a peering from a divider of one to a divider of "
     r"the other, and a host cannot send to itself"),
    ("duplicate-name", lambda inv: _second_peering(inv, "vpc1-red"), "mizar_vpc_peerings[1].name",
     r"VPC peering name 'vpc1-red' is already used by mizar_vpc_peerings\[0\]"),
    ("one-vpc", lambda inv: _pe(inv).update(vpcs=["vpc1"]), "mizar_vpc_peerings[0].vpcs",
     r"vpcs must be a list of the names of two VPCs, not a list of 1"),
    ("vpcs-missing", lambda inv: _pe(inv).pop("vpcs"), "mizar_vpc_peerings[0].vpcs", r"vpcs is required"),
    ("vpc-not-a-name", lambda inv: _pe(inv).update(vpcs=["vpc1", 7]), "mizar_vpc_peerings[0].vpcs[1]",
     r"a VPC is named by a non-empty string, not an integer \(7\)"),
    ("name-missing", lambda inv: _pe(inv).pop("name"), "mizar_vpc_peerings[0].name", r"name is required"),
    ("unknown-key", lambda inv: _pe(inv).update(vpc=["vpc1", "red"]), "mizar_vpc_peerings[0].vpc",
     r"unknown key .vpc. in a VPC peering \(did you mean \"vpcs\"\?\)"),
    ("not-a-list", lambda inv: inv.update(mizar_vpc_peerings={"name": "x"}), "mizar_vpc_peerings",
     r"must be a list of VPC peerings"),
]


def test_a_peering_is_valid():
    assert list(validate(peered())) == []


@pytest.mark.parametrize("mutate,path,pattern", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_one_defect(mutate, path, pattern):
    assert_one_defect(peered(), mutate, path, pattern)


def test_peer_cidrs_of_too_many_sizes(monkeypatch):
    monkeypatch.setattr(capacity, "MAX_PLENS", 1)
    inv = peered()
    inv["mizar_vpcs"].append({"name": "green", "vni": 400, "cidr": "10.3.0.0/24", "dividers": ["h1"]})
    inv["mizar_vpc_peerings"].append({"name": "vpc1-green", "vpcs": ["vpc1", "green"]})
    errors = validate(inv)
    assert [e.path for e in errors] == ["mizar_vpc_peerings[1].vpcs"], format_errors(errors)
    assert re.search(r"the VPCs peered with vpc1 have 2 different CIDR prefix lengths \(/16, /24\)",
                     errors[0].message)


def test_too_many_peer_routes_on_a_divider(monkeypatch):
    monkeypatch.setitem(capacity.MAP_CAPACITY, "peers", 0)
    errors = validate(peered())
    assert [e.path for e in errors] == ["hostvars[h2]", "hostvars[h3]"], format_errors(errors)
    assert re.search(r"host h2 would hold 1 entries in its peers map, more than its capacity 0", errors[0].message)


# ---------------------------------------------------------------- rendering


def test_each_divider_renders_a_route_to_the_peer():
    r = render_inventory(peered())
    assert r["h3"]["maps"]["peers"] == [
        {"vni": 100, "cidr": "10.2.0.0/16", "name": "vpc1-red", "peer": "red", "peer_vni": 300,
         "dividers": [ip_of("h2")], "src_cidr": "10.1.0.0/16"}]
    assert r["h2"]["maps"]["peers"] == [
        {"vni": 300, "cidr": "10.1.0.0/16", "name": "vpc1-red", "peer": "vpc1", "peer_vni": 100,
         "dividers": [ip_of("h3")], "src_cidr": "10.2.0.0/16"}]
    assert r["h1"]["maps"]["peers"] == []
    # a divider sends to the peer's dividers: it has their substrate entries
    assert "h2" in [s["name"] for s in r["h3"]["maps"]["substrate"]]
    assert "h3" in [s["name"] for s in r["h2"]["maps"]["substrate"]]


def test_without_peerings_nothing_changes_but_an_empty_list():
    inv = peered()
    del inv["mizar_vpc_peerings"]
    plain = render_inventory(inv)
    with_peering = render_inventory(peered())
    for host in plain:
        assert plain[host]["maps"]["peers"] == []
        if host == "h1":
            assert plain[host] == with_peering[host]


def test_routes_follow_the_dividers_order():
    inv = peered()
    _vpc(inv, "red")["dividers"] = ["h2", "h1"]
    r = render_inventory(inv)
    assert r["h3"]["maps"]["peers"][0]["dividers"] == [ip_of("h2"), ip_of("h1")]
    assert r["h1"]["maps"]["peers"][0]["vni"] == 300  # h1 divides red now


# ---------------------------------------------------------------- forwarding


def test_reachable_both_ways_over_the_dividers():
    model = ForwardingModel(render_inventory(peered()))
    there = model.send("vpc1/net1/ep1", "10.2.1.5")
    assert (there.delivered_to, there.path, there.drop_reason) == ("red/net1/r1", ["h1", "h3", "h2", "h1"], None)
    back = model.send("red/net1/r1", "10.1.0.5")
    assert (back.delivered_to, back.path, back.drop_reason) == ("vpc1/net1/ep1", ["h1", "h2", "h3", "h1"], None)


def test_a_vpc_reusing_the_cidr_stays_isolated():
    """vpc2 reuses vpc1's 10.1.0.0/16 and is peered with nobody: it reaches
    no address of red, and red's traffic for 10.1.0.5 goes to vpc1's ep1,
    never to vpc2's endpoint of the same address."""
    model = ForwardingModel(render_inventory(peered()))
    assert model.send("vpc2/net1/other", "10.2.1.5").delivered_to is None
    assert model.send("red/net1/r1", "10.1.0.5").delivered_to == "vpc1/net1/ep1"


def test_removing_the_peering_cuts_traffic():
    inv = peered()
    inv["mizar_vpc_peerings"] = []
    model = ForwardingModel(render_inventory(inv))
    r = model.send("vpc1/net1/ep1", "10.2.1.5")
    assert (r.delivered_to, r.drop_reason) == (None, "no_network")
