"""Validation: one defect per inventory, each with its own path and message."""
import copy
import ipaddress
import re

import pytest

from ansible_collections.mizar.transit.plugins.module_utils.model import addr, capacity
from ansible_collections.mizar.transit.plugins.module_utils.model.errors import InvalidInventory, format_errors
from ansible_collections.mizar.transit.plugins.module_utils.model.render import render_inventory
from ansible_collections.mizar.transit.plugins.module_utils.model.validate import check, validate

from unit_inventory import assert_one_defect, base, hostvars


def V(inv, i=0):
    return inv["mizar_vpcs"][i]


def N(inv, i=0, j=0):
    return V(inv, i)["networks"][j]


def E(inv, i=0, j=0, k=0):
    return N(inv, i, j)["endpoints"][k]


def F(inv, i=0):
    return inv["mizar_functions"][i]


def H(inv, name):
    return inv["hosts"][name]


def RULE(inv):
    return F(inv)["config"]["rules"][0]


def many_backends(inv, n):
    """lb's backends: n endpoints of a new network of vpc1 (10.1.32.0/19), on h1 and h2."""
    names = ["b%d" % i for i in range(n)]
    V(inv)["networks"].append({"name": "big", "cidr": "10.1.32.0/19", "bouncers": ["h3"], "endpoints": [
        {"name": name, "ip": str(ipaddress.ip_address("10.1.32.10") + i), "host": "h%d" % (1 + i % 2),
         "netns": name} for i, name in enumerate(names)]})
    E(inv, k=2)["backends"] = names


def _many_backends(inv):
    many_backends(inv, capacity.MAX_BACKENDS + 1)


def _second_scaled(inv):
    N(inv)["endpoints"].append({"name": "lb2", "ip": "10.1.0.8", "type": "scaled", "backends": ["ep1"]})
    E(inv, k=2)["backends"] = ["ep1", "lb2"]


def _cross_vpc(inv):
    E(inv, k=2)["backends"] = ["ep1", "other"]


def _peer(inv, **extra):
    """A tunnel peer and an endpoint of vpc1/net1 behind it, then extra on that endpoint."""
    inv["mizar_tunnel_peers"] = [{"name": "vtep1", "ip": "192.168.50.77", "mac": "02:00:00:00:00:77"}]
    ep = {"name": "ext1", "ip": "10.1.0.20", "tunnel_peer": "vtep1"}
    ep.update(extra)
    N(inv)["endpoints"].append(ep)
    return inv


def _second_acl(inv):
    inv["mizar_functions"].insert(1, {"name": "acl2", "stage": "on_xdp_redirect", "program": "acl", "hosts": ["h1"],
                                      "config": {"rules": []}})


def _second_acl_named_acl1(inv):
    """A second ACL named acl1 too, at on_xdp_tx of h1, with the first's rules: one defect, its name."""
    _second_acl(inv)
    F(inv, 1).update(name="acl1", stage="on_xdp_tx", config=copy.deepcopy(F(inv)["config"]))


def _long_chain(inv):
    inv["mizar_functions"][1:1] = [{"name": "f%d" % i, "stage": "on_xdp_redirect", "program": "fns/f%d.c" % i}
                                   for i in range(1, 9)]


# (id, mutation, path, message pattern)
CASES = [
    # unknown keys, with suggestions
    ("vpc-unknown-key", lambda inv: V(inv).update(nmae="x"), "mizar_vpcs[0].nmae",
     r"unknown key 'nmae' in a VPC \(did you mean \"name\"\?\)"),
    ("network-unknown-key", lambda inv: N(inv).update(bouncer=["h3"]), "mizar_vpcs[0].networks[0].bouncer",
     r"unknown key 'bouncer' in a network \(did you mean \"bouncers\"\?\)"),
    ("endpoint-unknown-key", lambda inv: E(inv).update(bypass_decapp=True),
     "mizar_vpcs[0].networks[0].endpoints[0].bypass_decapp", r"did you mean \"bypass_decap\""),
    ("function-unknown-key", lambda inv: F(inv).update(stages="x"), "mizar_functions[0].stages",
     r"unknown key 'stages' in a function \(did you mean \"stage\"\?\)"),
    ("host-var-typo", lambda inv: H(inv, "h1").update(mizar_interfce="eth1"), "hostvars[h1].mizar_interfce",
     r"unknown host variable 'mizar_interfce' \(did you mean \"mizar_interface\"\?\)"),
    ("inventory-unknown-key", lambda inv: inv.update(mizar_vpc=[]), "inventory.mizar_vpc",
     r"did you mean \"mizar_vpcs\""),
    # wrong types
    ("vni-string", lambda inv: V(inv).update(vni="100"), "mizar_vpcs[0].vni", r"must be an integer .*not a string"),
    ("vni-bool", lambda inv: V(inv).update(vni=True), "mizar_vpcs[0].vni", r"must be an integer .*not a boolean"),
    ("networks-not-list", lambda inv: V(inv, 1).update(networks="net1"), "mizar_vpcs[1].networks",
     r"networks must be a list, not a string"),
    ("bypass-not-bool", lambda inv: E(inv).update(bypass_decap="yes"),
     "mizar_vpcs[0].networks[0].endpoints[0].bypass_decap", r"must be true or false"),
    ("endpoint-not-mapping", lambda inv: N(inv, 1, 0)["endpoints"].append("ep9"),
     "mizar_vpcs[1].networks[0].endpoints[1]", r"an endpoint must be a mapping"),
    ("vpcs-not-list", lambda inv: inv.update(mizar_vpcs={"name": "vpc1"}, mizar_functions=[]), "mizar_vpcs",
     r"mizar_vpcs must be a list of VPCs, not a mapping"),
    ("endpoint-type", lambda inv: E(inv).update(type="scaledd"), "mizar_vpcs[0].networks[0].endpoints[0].type",
     r"endpoint type 'scaledd' is not one of simple, scaled \(did you mean \"scaled\"\?\)"),
    # ranges
    ("vni-zero", lambda inv: V(inv).update(vni=0), "mizar_vpcs[0].vni", r"vni 0 is out of range: a VNI is 1 to 16777215"),
    ("vni-too-big", lambda inv: V(inv).update(vni=1 << 24), "mizar_vpcs[0].vni", r"out of range"),
    ("model-version", lambda inv: inv.update(mizar_model_version=2), "mizar_model_version",
     r"model version 2 is not supported.*version 1"),
    # malformed addresses
    ("vpc-cidr-plen", lambda inv: V(inv).update(cidr="10.1.0.0/33"), "mizar_vpcs[0].cidr",
     r"prefix length after '/' must be 0 to 32"),
    ("network-cidr-host-bits", lambda inv: N(inv).update(cidr="10.1.0.1/24"), "mizar_vpcs[0].networks[0].cidr",
     r"has host bits set: the network is 10.1.0.0/24"),
    ("network-cidr-ipv6", lambda inv: V(inv, 1).update(cidr="fd00::/64"), "mizar_vpcs[1].cidr",
     r"not an IPv4 address.*IPv4 CIDRs only"),
    ("ip-octet", lambda inv: E(inv).update(ip="10.1.0.256"), "mizar_vpcs[0].networks[0].endpoints[0].ip",
     r"256 is more than 255"),
    ("ip-leading-zero", lambda inv: E(inv).update(ip="10.1.0.05"), "mizar_vpcs[0].networks[0].endpoints[0].ip",
     r"leading zero.*write 10.1.0.5"),
    ("mac-short", lambda inv: E(inv).update(mac="02:00:00:00:00"), "mizar_vpcs[0].networks[0].endpoints[0].mac",
     r"is not a MAC address: write six hex byte pairs"),
    ("mac-multicast", lambda inv: E(inv).update(mac="01:00:5e:00:00:01"),
     "mizar_vpcs[0].networks[0].endpoints[0].mac", r"multicast MAC address"),
    ("underlay-ip", lambda inv: H(inv, "h2").update(mizar_underlay_ip="192.168.50"),
     "hostvars[h2].mizar_underlay_ip", r"is not an IPv4 address"),
    ("underlay-mac", lambda inv: H(inv, "h2").update(mizar_underlay_mac="zz:00:00:00:00:01"),
     "hostvars[h2].mizar_underlay_mac", r"is not a MAC address"),
    # containment and overlap
    ("endpoint-outside-network", lambda inv: E(inv).update(ip="10.1.1.50"),
     "mizar_vpcs[0].networks[0].endpoints[0].ip", r"IP 10.1.1.50 is outside its network 10.1.0.0/24"),
    ("networks-overlap", lambda inv: N(inv, 0, 1).update(cidr="10.1.0.0/23"), "mizar_vpcs[0].networks[0].cidr",
     r"network 10.1.0.0/24 overlaps 10.1.0.0/23 \(mizar_vpcs\[0\].networks\[1\]\) in VPC vpc1"),
    ("network-outside-vpc", lambda inv: (N(inv, 0, 1).update(cidr="10.2.1.0/24"), E(inv, 0, 1, 0).update(ip="10.2.1.5")),
     "mizar_vpcs[0].networks[1].cidr", r"network 10.2.1.0/24 is outside its VPC's CIDR 10.1.0.0/16"),
    ("network-too-small", lambda inv: V(inv, 1)["networks"][0].update(cidr="10.1.0.4/31", endpoints=[]),
     "mizar_vpcs[1].networks[0].cidr", r"network 10.1.0.4/31 is too small.*at most /30"),
    ("endpoint-network-address", lambda inv: E(inv).update(ip="10.1.0.0"),
     "mizar_vpcs[0].networks[0].endpoints[0].ip", r"is the network address of 10.1.0.0/24"),
    ("endpoint-broadcast", lambda inv: E(inv).update(ip="10.1.0.255"),
     "mizar_vpcs[0].networks[0].endpoints[0].ip", r"is the broadcast address of 10.1.0.0/24"),
    ("endpoint-gateway", lambda inv: E(inv).update(ip="10.1.0.1"),
     "mizar_vpcs[0].networks[0].endpoints[0].ip", r"IP 10.1.0.1 is the gateway of 10.1.0.0/24"),
    # duplicates
    ("duplicate-vni", lambda inv: V(inv, 1).update(vni=100), "mizar_vpcs[1].vni",
     r"VNI 100 is already used by mizar_vpcs\[0\]"),
    ("duplicate-vpc-name", lambda inv: V(inv, 1).update(name="vpc1"), "mizar_vpcs[1].name",
     r"VPC name 'vpc1' is already used by mizar_vpcs\[0\]"),
    ("duplicate-network-name", lambda inv: N(inv, 0, 1).update(name="net1"), "mizar_vpcs[0].networks[1].name",
     r"network name 'net1' is already used in VPC vpc1"),
    ("duplicate-endpoint-name", lambda inv: E(inv, 0, 1, 0).update(name="ep1"),
     "mizar_vpcs[0].networks[1].endpoints[0].name", r"endpoint name 'ep1' is already used in VPC vpc1"),
    ("duplicate-endpoint-ip", lambda inv: E(inv, k=1).update(ip="10.1.0.5"),
     "mizar_vpcs[0].networks[0].endpoints[1].ip",
     r"IP 10.1.0.5 is already used in VPC vpc1 by mizar_vpcs\[0\].networks\[0\].endpoints\[0\]"),
    ("duplicate-mac-derived", lambda inv: E(inv, k=1).update(mac=addr.derived_mac(100, "10.1.0.5")),
     "mizar_vpcs[0].networks[0].endpoints[1].mac",
     r"MAC 02:[0-9a-f:]+ \(given\) is already used in VPC vpc1 by mizar_vpcs\[0\].networks\[0\].endpoints\[0\]"),
    ("duplicate-function-name", _second_acl_named_acl1,
     "mizar_functions[1].name", r"function name 'acl1' is already used by mizar_functions\[0\]"),
    ("duplicate-underlay-ip", lambda inv: H(inv, "h2").update(mizar_underlay_ip="192.168.50.1"),
     "hostvars[h2].mizar_underlay_ip", r"underlay IP 192.168.50.1 is also h1's"),
    ("duplicate-bouncer", lambda inv: N(inv).update(bouncers=["h3", "h3"]),
     "mizar_vpcs[0].networks[0].bouncers[1]", r"bouncer 'h3' is listed twice"),
    ("duplicate-netns-on-host", lambda inv: E(inv, 0, 1, 0).update(netns="ep1"),
     "mizar_vpcs[0].networks[1].endpoints[0].netns", r"namespace 'ep1' on host h1 is already"),
    ("iface-is-substrate-nic", lambda inv: E(inv, k=1).update(iface="eth0"),
     "mizar_vpcs[0].networks[0].endpoints[1].iface", r"interface eth0 is the substrate NIC of h2"),
    # hosts of mizar_hosts
    ("bouncer-unknown", lambda inv: N(inv).update(bouncers=["h9"]), "mizar_vpcs[0].networks[0].bouncers[0]",
     r"bouncer 'h9' is not a host of group mizar_hosts"),
    ("divider-unknown", lambda inv: V(inv).update(dividers=["h33"]), "mizar_vpcs[0].dividers[0]",
     r"divider 'h33' is not a host of group mizar_hosts \(did you mean \"h3\"\?\)"),
    ("endpoint-host-unknown", lambda inv: E(inv).update(host="h4"), "mizar_vpcs[0].networks[0].endpoints[0].host",
     r"endpoint host 'h4' is not a host of group mizar_hosts"),
    ("bouncers-empty", lambda inv: N(inv).update(bouncers=[]), "mizar_vpcs[0].networks[0].bouncers",
     r"bouncers is empty: list at least one host"),
    ("bouncers-missing", lambda inv: N(inv).pop("bouncers"), "mizar_vpcs[0].networks[0].bouncers",
     r"bouncers is required"),
    ("no-divider", lambda inv: V(inv).pop("dividers"), "mizar_vpcs[0].dividers",
     r"VPC vpc1 has 2 networks and no divider"),
    # scaled endpoints
    ("backend-unknown", lambda inv: E(inv, k=2).update(backends=["ep1", "ep9"]),
     "mizar_vpcs[0].networks[0].endpoints[2].backends[1]", r"no endpoint named 'ep9' in VPC vpc1"),
    ("backends-empty", lambda inv: E(inv, k=2).update(backends=[]), "mizar_vpcs[0].networks[0].endpoints[2].backends",
     r"a scaled endpoint needs backends"),
    ("backend-cross-vpc", _cross_vpc, "mizar_vpcs[0].networks[0].endpoints[2].backends[1]",
     r"backend 'other' is an endpoint of VPC vpc2, not of vpc1"),
    ("backend-scaled", _second_scaled, "mizar_vpcs[0].networks[0].endpoints[2].backends[1]",
     r"backend 'lb2' is itself a scaled endpoint"),
    ("backends-too-many", _many_backends, "mizar_vpcs[0].networks[0].endpoints[2].backends",
     r"4097 backends, more than the 4096 a scaled endpoint holds: list at most 4096"),
    ("scaled-with-host", lambda inv: E(inv, k=2).update(host="h1"), "mizar_vpcs[0].networks[0].endpoints[2].host",
     r"a scaled endpoint has no host"),
    ("scaled-with-netns", lambda inv: E(inv, k=2).update(netns="lb"), "mizar_vpcs[0].networks[0].endpoints[2].netns",
     r"a scaled endpoint has no netns"),
    ("simple-with-backends", lambda inv: E(inv).update(backends=["ep2"]),
     "mizar_vpcs[0].networks[0].endpoints[0].backends", r"only scaled endpoints have backends"),
    # simple endpoints
    ("simple-no-place", lambda inv: E(inv).pop("netns"), "mizar_vpcs[0].networks[0].endpoints[0]",
     r"set netns \(created for it\) or iface"),
    ("simple-both-places", lambda inv: E(inv).update(iface="veth9"), "mizar_vpcs[0].networks[0].endpoints[0].iface",
     r"set only one of netns and iface"),
    ("simple-no-host", lambda inv: E(inv).pop("host"), "mizar_vpcs[0].networks[0].endpoints[0].host",
     r"host is required for a simple endpoint"),
    ("netns-name", lambda inv: E(inv).update(netns="my ns"), "mizar_vpcs[0].networks[0].endpoints[0].netns",
     r"'my ns' is not a usable network namespace name"),
    ("iface-too-long", lambda inv: E(inv, k=1).update(iface="averyveryverylong"),
     "mizar_vpcs[0].networks[0].endpoints[1].iface", r"is 17 characters long; Linux interface names have at most 15"),
    ("endpoint-name", lambda inv: E(inv, 0, 1, 0).update(name="ep/3"), "mizar_vpcs[0].networks[1].endpoints[0].name",
     r"'ep/3' is not a valid name"),
    # functions
    ("function-stage", lambda inv: F(inv).update(stage="on_xdp_redirct"), "mizar_functions[0].stage",
     r"unknown stage 'on_xdp_redirct' \(did you mean \"on_xdp_redirect\"\?\)"),
    ("function-program", lambda inv: F(inv).update(program="acll"), "mizar_functions[0].program",
     r"unknown program 'acll' \(did you mean \"acl\"\?\): name a function shipped in bpf/functions"),
    ("function-stage-not-allowed", lambda inv: F(inv).update(stage="on_xdp_pass"), "mizar_functions[0].stage",
     r"function acl cannot run at on_xdp_pass: it runs at on_xdp_redirect, on_xdp_tx"),
    ("function-host-unknown", lambda inv: F(inv).update(hosts=["h1", "h7"]), "mizar_functions[0].hosts[1]",
     r"function host 'h7' is not a host of group mizar_hosts"),
    ("function-program-twice-in-a-chain", _second_acl, "mizar_functions[1].program",
     r"stage on_xdp_redirect of host h1 already runs acl \(mizar_functions\[0\]\): a stage's chain runs a program "
     r"once"),
    ("function-chain-too-long", _long_chain, "mizar_functions[8].stage",
     r"stage on_xdp_redirect of host h1 would run 9 functions \(mizar_functions\[0\], .*mizar_functions\[8\]\): a "
     r"stage's chain holds 8 at most"),
    ("function-config-type", lambda inv: F(inv).update(config=["rules"]), "mizar_functions[0].config",
     r"config must be a mapping"),
    ("acl-rules-missing", lambda inv: F(inv).update(config={}), "mizar_functions[0].config.rules",
     r"rules is required"),
    ("acl-unknown-setting", lambda inv: F(inv)["config"].update(rule=[]), "mizar_functions[0].config.rule",
     r"unknown setting 'rule' \(did you mean \"rules\"\?\)"),
    ("acl-vpc-unknown", lambda inv: RULE(inv).update(vpc="vpc9"), "mizar_functions[0].config.rules[0].vpc",
     r"no VPC named 'vpc9' in mizar_vpcs"),
    ("acl-cidr", lambda inv: RULE(inv).update(dst="10.1.1/24"), "mizar_functions[0].config.rules[0].dst",
     r"is not an IPv4 address"),
    ("acl-port-icmp", lambda inv: RULE(inv).update(protocol="icmp"), "mizar_functions[0].config.rules[0].port",
     r"port applies only when protocol is tcp or udp, not 'icmp'"),
    ("acl-port-range", lambda inv: RULE(inv).update(port=70000), "mizar_functions[0].config.rules[0].port",
     r"70000 is out of range: use 1 to 65535"),
    ("acl-protocol", lambda inv: RULE(inv).update(protocol="tpc"), "mizar_functions[0].config.rules[0].protocol",
     r"'tpc' is not one of tcp, udp, icmp, any \(did you mean \"tcp\"\?\)"),
    ("acl-too-many-rules", lambda inv: F(inv)["config"].update(rules=[dict(RULE(inv), port=p) for p in range(1, 66)]),
     "mizar_functions[0].config.rules", r"65 items, more than the 64 the function holds"),
    ("acl-action-missing", lambda inv: RULE(inv).pop("action"), "mizar_functions[0].config.rules[0].action",
     r"action is required"),
    # host settings
    ("interface-missing", lambda inv: H(inv, "h3").pop("mizar_interface"), "hostvars[h3].mizar_interface",
     r"mizar_interface is required"),
    ("interface-name", lambda inv: H(inv, "h3").update(mizar_interface="eth0:1"), "hostvars[h3].mizar_interface",
     r"contains ':', which Linux does not allow"),
    ("xdp-mode", lambda inv: H(inv, "h3").update(mizar_xdp_mode="nativ"), "hostvars[h3].mizar_xdp_mode",
     r"XDP mode 'nativ' is not one of native, generic \(did you mean \"native\"\?\)"),
    ("pin-dir-relative", lambda inv: H(inv, "h3").update(mizar_bpf_pin_dir="bpf/mizar"),
     "hostvars[h3].mizar_bpf_pin_dir", r"must be an absolute path below the bpffs mount"),
    ("pin-dir-not-bpffs", lambda inv: H(inv, "h3").update(mizar_bpf_pin_dir="/tmp/mizar"),
     "hostvars[h3].mizar_bpf_pin_dir", r"'/tmp/mizar' is not below a bpffs mount"),
    ("pin-dir-dotdot", lambda inv: H(inv, "h3").update(mizar_bpf_pin_dir="/sys/fs/bpf/../mizar"),
     "hostvars[h3].mizar_bpf_pin_dir", r"is not a normalized path"),
    ("bpf-dir-relative", lambda inv: H(inv, "h3").update(mizar_bpf_dir="var/lib/mizar"),
     "hostvars[h3].mizar_bpf_dir", r"must be an absolute path other than /, not a string \('var/lib/mizar'\)"),
    ("bpf-dir-root", lambda inv: H(inv, "h3").update(mizar_bpf_dir="/"), "hostvars[h3].mizar_bpf_dir",
     r"an absolute path other than /"),
    ("switch-mode", lambda inv: H(inv, "h3").update(mizar_xdp_switch_mode="maybe"),
     "hostvars[h3].mizar_xdp_switch_mode", r"must be true or false, not a string \('maybe'\)"),
    ("host-var-typo-bpf-dir", lambda inv: H(inv, "h1").update(mizar_bpf_dri="/x"), "hostvars[h1].mizar_bpf_dri",
     r"did you mean \"mizar_bpf_dir\""),
    ("textfile-relative", lambda inv: H(inv, "h2").update(mizar_prometheus_textfile="mizar.prom"),
     "hostvars[h2].mizar_prometheus_textfile", r"must be an absolute path of a file named \*\.prom .*, not a string "
     r"\('mizar.prom'\)"),
    ("textfile-typo", lambda inv: H(inv, "h1").update(mizar_prometheus_textfle="/x.prom"),
     "hostvars[h1].mizar_prometheus_textfle", r"did you mean \"mizar_prometheus_textfile\""),
    # function objects (functions/<stem>.bpf.o, one per stem)
    ("user-source-shipped-stem", lambda inv: inv["mizar_functions"].insert(
        1, {"name": "mine", "stage": "on_xdp_pass", "program": "fn/acl.c"}), "mizar_functions[1].program",
     r"fn/acl.c would build functions/acl.bpf.o, the object of the shipped function acl: rename your source"),
    ("user-sources-same-stem", lambda inv: inv["mizar_functions"].__setitem__(slice(1, 1), [
        {"name": "a", "stage": "on_xdp_pass", "program": "a/fn.c", "hosts": ["h1"]},
        {"name": "b", "stage": "on_xdp_pass", "program": "/b/fn.bpf.c", "hosts": ["h2"]}]),
     "mizar_functions[2].program", r"/b/fn.bpf.c would build functions/fn.bpf.o, which "
     r"mizar_functions\[1\].program \(a/fn.c\) builds too: rename one of the sources"),
    # tunnel peers
    ("peer-unknown", lambda inv: _peer(inv, tunnel_peer="vtep9"), "mizar_vpcs[0].networks[0].endpoints[3].tunnel_peer",
     r"tunnel peer 'vtep9' is not in mizar_tunnel_peers \(did you mean \"vtep1\"\?\)"),
    ("peer-endpoint-with-netns", lambda inv: _peer(inv, netns="ext1"), "mizar_vpcs[0].networks[0].endpoints[3].netns",
     r"an endpoint behind a tunnel peer has no netns"),
    ("peer-endpoint-bypass", lambda inv: _peer(inv, bypass_decap=True),
     "mizar_vpcs[0].networks[0].endpoints[3].bypass_decap", r"bypass_decap does not apply"),
    ("peer-as-backend", lambda inv: E(_peer(inv), k=2).update(backends=["ep1", "ext1"]),
     "mizar_vpcs[0].networks[0].endpoints[2].backends[1]", r"backend 'ext1' is behind tunnel peer vtep1"),
    ("peer-named-like-a-host", lambda inv: _peer(inv, tunnel_peer="h2")["mizar_tunnel_peers"][0].update(name="h2"),
     "mizar_tunnel_peers[0].name", r"has the name of a host of mizar_hosts"),
    ("peer-ip-of-a-host", lambda inv: _peer(inv)["mizar_tunnel_peers"][0].update(ip="192.168.50.2"),
     "mizar_tunnel_peers[0].ip", r"is transit host h2's underlay address"),
    ("peer-mac-missing", lambda inv: _peer(inv)["mizar_tunnel_peers"][0].pop("mac"),
     "mizar_tunnel_peers[0].mac", r"mac is required"),
    ("peer-unknown-key", lambda inv: _peer(inv)["mizar_tunnel_peers"][0].update(port=6081),
     "mizar_tunnel_peers[0].port", r"unknown key"),
    ("peers-not-a-list", lambda inv: inv.update(mizar_tunnel_peers={"name": "x"}), "mizar_tunnel_peers",
     r"must be a list of tunnel peers"),
]


def test_base_inventory_is_valid():
    assert list(validate(base())) == []


def test_an_endpoint_behind_a_tunnel_peer_is_valid():
    assert list(validate(_peer(base()))) == []


@pytest.mark.parametrize("mutate,path,pattern", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_one_defect(mutate, path, pattern):
    assert_one_defect(base(), mutate, path, pattern)


def test_there_are_at_least_forty_cases():
    assert len(CASES) >= 40
    assert len(set(c[0] for c in CASES)) == len(CASES)


def test_capacity_exceeded(monkeypatch):
    monkeypatch.setitem(capacity.MAP_CAPACITY, "agents", 1)
    errors = validate(base())
    assert [e.path for e in errors] == ["hostvars[h1]", "hostvars[h2]"]
    assert re.search(r"host h1 would hold 2 entries in its agents map, more than its capacity 1 "
                     r"\(it hosts 2 endpoints, bounces 1 networks, divides 0 VPCs\)", errors[0].message)


def test_too_many_trusted_sources(monkeypatch):
    inv = base()
    monkeypatch.setattr(capacity, "MAX_SOURCES", len(inv["hosts"]) - 1)
    errors = validate(inv)
    assert [e.path for e in errors] == ["mizar_hosts"]
    assert re.search(r"the fleet has %d trusted tunnel sources \(transit hosts, and tunnel peers once per VPC\), "
                     r"more than the %d" % (len(inv["hosts"]), len(inv["hosts"]) - 1), errors[0].message)


def test_too_many_backends_of_scaled_endpoints_on_a_host(monkeypatch):
    monkeypatch.setattr(capacity, "MAX_MEMBERS", 1)
    errors = validate(base())
    # h3 balances lb; h1 and h2 host its backends, and deliver to them: each holds lb's 2 members
    assert [e.path for e in errors] == ["hostvars[h1]", "hostvars[h2]", "hostvars[h3]"]
    assert ("host h3 would hold 2 backends of scaled endpoints in all, more than the 1 its members map holds"
            in errors[2].message)


def test_too_many_scaled_endpoints_on_a_host(monkeypatch):
    inv = base()
    lb = [ep for vpc in inv["mizar_vpcs"] for net in vpc["networks"] for ep in net["endpoints"]
          if ep.get("type") == "scaled"]
    monkeypatch.setattr(capacity, "MAX_SCALED", len(lb) - 1)
    errors = validate(inv)
    # h3 balances lb; h1 and h2 host its backends, and deliver to them: each holds it
    assert [e.path for e in errors] == ["hostvars[h1]", "hostvars[h2]", "hostvars[h3]"]
    assert ("host h3 would hold %d scaled endpoints, more than the %d its scaled function serves" % (len(lb), len(lb) - 1)
            in errors[2].message)


def test_too_many_bouncers(monkeypatch):
    monkeypatch.setattr(capacity, "MAX_HOPS", 1)
    inv = base()
    N(inv).update(bouncers=["h3", "h2"])
    errors = validate(inv)
    assert [e.path for e in errors] == ["mizar_vpcs[0].networks[0].bouncers"]
    assert "2 bouncers, more than the 1 the datapath holds" in errors[0].message


def test_too_many_prefix_lengths(monkeypatch):
    monkeypatch.setattr(capacity, "MAX_PLENS", 1, raising=False)
    inv = base()
    N(inv, 0, 1).update(cidr="10.1.1.0/25")
    errors = validate(inv)
    assert [e.path for e in errors] == ["mizar_vpcs[0].networks"]
    assert "2 different prefix lengths (/24, /25)" in errors[0].message


def test_several_defects_are_all_reported():
    inv = base()
    V(inv).update(vni="100")                         # type
    N(inv, 0, 1).update(cidr="10.2.1.0/24")          # outside the VPC (and so is ep3)
    E(inv).update(ip="10.1.0.1")                     # gateway
    E(inv, k=1).update(host="h4")                    # not a transit host
    E(inv, k=2).update(backends=["ep1", "nope"])     # unknown backend
    V(inv, 1).update(name="vpc1")                    # duplicate VPC name
    F(inv).update(stage="on_xdp_drop")               # acl cannot run there
    H(inv, "h2").update(mizar_xdp_mode="fast")       # bad mode
    inv["hosts"]["h3"].pop("mizar_interface")        # missing
    errors = validate(inv)
    assert [e.path for e in errors] == [
        "hostvars[h2].mizar_xdp_mode",
        "hostvars[h3].mizar_interface",
        "mizar_functions[0].stage",
        "mizar_vpcs[0].networks[0].endpoints[0].ip",
        "mizar_vpcs[0].networks[0].endpoints[1].host",
        "mizar_vpcs[0].networks[0].endpoints[2].backends[1]",
        "mizar_vpcs[0].networks[1].cidr",
        "mizar_vpcs[0].networks[1].endpoints[0].ip",
        "mizar_vpcs[0].vni",
        "mizar_vpcs[1].name",
    ], format_errors(errors)
    text = errors.format()
    assert text.startswith("10 errors in the mizar inventory (nothing was applied):\n- hostvars[h2].mizar_xdp_mode: ")
    assert len(text.splitlines()) == 11
    with pytest.raises(InvalidInventory) as info:
        check(inv)
    assert info.value.errors == errors
    assert str(info.value) == text


def test_errors_are_plain_data():
    inv = base()
    E(inv).update(ip="10.1.0.1")
    errors = validate(inv)
    assert errors.as_dicts() == [{"path": "mizar_vpcs[0].networks[0].endpoints[0].ip",
                                  "message": errors[0].message}]
    assert str(errors[0]).startswith("mizar_vpcs[0].networks[0].endpoints[0].ip: IP 10.1.0.1 is the gateway")


def test_empty_inventory_is_valid():
    assert list(validate({"hosts": {}, "mizar_vpcs": []})) == []


def test_not_a_mapping():
    errors = validate(["mizar_vpcs"])
    assert [(e.path, e.message) for e in errors] == [
        ("inventory", "the inventory data must be a mapping (key: value lines), not a list")]


def test_optional_host_addresses():
    inv = base()
    inv["hosts"]["h3"] = {"mizar_interface": "eth1"}
    assert list(validate(inv)) == []


def test_role_variables_are_not_typos():
    inv = base()
    H(inv, "h1").update(mizar_lab_bridge="br0", mizar_render_dir="/tmp")
    assert list(validate(inv)) == []


def test_same_cidr_in_two_vpcs_is_fine():
    inv = base()
    V(inv, 1)["networks"][0]["endpoints"][0]["mac"] = addr.derived_mac(100, "10.1.0.5")  # MACs are per VPC
    assert list(validate(inv)) == []


def _acl_at_tx(hosts, rules=None):
    return {"name": "acl-tx", "stage": "on_xdp_tx", "program": "acl", "hosts": hosts,
            "config": {"rules": rules or [{"vpc": "vpc1", "dst": "10.1.0.0/24", "protocol": "udp", "action": "drop"}]}}


def test_one_shipped_function_at_two_stages_of_a_host_needs_one_config():
    """The ACL at on_xdp_redirect on every host and at on_xdp_tx on h2 with
    other rules: the acl maps of h2 hold one rule set. Refused at the second
    function's config, naming the first, the host and its stage; the same
    rules (normalized: src defaulted) or hosts apart are fine."""
    inv = base()
    inv["mizar_functions"].insert(1, _acl_at_tx(["h2", "h3"]))  # before base()'s lb1
    errors = validate(inv)
    assert [(e.path, e.message) for e in errors] == [(
        "mizar_functions[1].config", "differs from the config of mizar_functions[0] (acl1), which runs acl on host h2 "
        "too (at on_xdp_redirect): acl keeps one set of rules per host, shared by every stage running it there; give "
        "both the same config, or run them on different hosts")], errors.format()
    same = copy.deepcopy(F(inv)["config"]["rules"])
    same[0]["src"] = "0.0.0.0/0"  # what the first one's rules normalize to
    inv["mizar_functions"][1] = _acl_at_tx(["h2", "h3"], same)
    assert list(validate(inv)) == []
    F(inv)["hosts"] = ["h1"]
    inv["mizar_functions"][1] = _acl_at_tx(["h2", "h3"])
    assert list(validate(inv)) == [], "on different hosts, different rules"


def test_user_source_function_config_passes_through():
    inv = base()
    inv["mizar_functions"].append({"name": "mine", "stage": "on_xdp_pass", "program": "fn/mine.c",
                                   "config": {"anything": [1, 2]}})
    assert list(validate(inv)) == []


def test_one_source_for_several_functions():
    inv = base()
    inv["mizar_functions"] += [{"name": "a", "stage": "on_xdp_pass", "program": "fn/mine.c", "hosts": ["h1"]},
                               {"name": "b", "stage": "on_xdp_tx", "program": "./fn/mine.c", "hosts": None}]
    assert list(validate(inv)) == []


@pytest.mark.parametrize("value, flag", [(True, True), (False, False), ("yes", True), ("False", False),
                                         (1, True), ("0", False), ("on", True)])
def test_switch_mode_as_ansible_reads_it(value, flag):
    inv = base()
    H(inv, "h2").update(mizar_xdp_switch_mode=value, mizar_bpf_dir="/srv/mizar/objects/")
    model, _plans = check(inv)
    assert model.hosts["h2"].switch_mode is flag and model.hosts["h1"].switch_mode is False
    assert (model.hosts["h2"].bpf_dir, model.hosts["h1"].bpf_dir) == ("/srv/mizar/objects", "/var/lib/mizar/bpf")


@pytest.mark.parametrize("value", ["/var/lib/node/mizar.txt", "/var/lib/../mizar.prom", "/var/lib/.prom", 7])
def test_a_textfile_that_is_no_prom_file_is_refused(value):
    inv = base()
    H(inv, "h2").update(mizar_prometheus_textfile=value)
    errors = validate(inv)
    assert [e.path for e in errors] == ["hostvars[h2].mizar_prometheus_textfile"]
    assert "an absolute path of a file named *.prom (the collector reads no other)" in errors[0].message


def test_prometheus_textfile_is_off_unless_set():
    inv = base()
    H(inv, "h2").update(mizar_prometheus_textfile="/var/lib/prometheus/node-exporter/mizar.prom")
    model, _plans = check(inv)
    assert model.hosts["h2"].prometheus_textfile == "/var/lib/prometheus/node-exporter/mizar.prom"
    assert model.hosts["h1"].prometheus_textfile is None


def test_pin_dir_on_other_bpffs_mount():
    inv = base()
    inv["hosts"]["h1"] = hostvars(1, mizar_bpf_pin_dir="/run/bpffs/mizar")
    assert list(validate(inv)) == []


def test_a_scaled_endpoint_of_4096_backends_validates_and_renders():
    inv = base()
    many_backends(inv, capacity.MAX_BACKENDS)
    assert validate(inv) == [], format_errors(validate(inv))
    r = render_inventory(inv)
    want = [str(ipaddress.ip_address("10.1.32.10") + i) for i in range(capacity.MAX_BACKENDS)]
    for host in ("h1", "h2", "h3"):  # the balancer and the backends' hosts (their agents check DSR)
        (lb,) = [e for e in r[host]["maps"]["endpoints"] if e["name"] == "vpc1/net1/lb"]
        assert lb["backends"] == want, host
    (cfg,) = [f["config"] for f in r["h3"]["functions"] if f["program"] == "scaled"]
    assert [b["ip"] for b in cfg["endpoints"][0]["backends"]] == want
