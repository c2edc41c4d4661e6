"""Rendering on the topologies of Mizar's functional tests: the full entry set of every host;
the same inventory gives the same bytes whatever the order of hosts, VPCs, networks and endpoints."""
import copy
import hashlib
import random

import pytest

from ansible_collections.mizar.transit.plugins.module_utils.model import addr
from ansible_collections.mizar.transit.plugins.module_utils.model.errors import InvalidInventory
from ansible_collections.mizar.transit.plugins.module_utils.model.forwarding import ForwardingModel
from ansible_collections.mizar.transit.plugins.module_utils.model.render import count_entries, dump, render_inventory

from unit_inventory import (agent_entry, base, bounced_entry, ep_entry, gw_entry, hosts, local_ep, net_entry, rendering,
                            sub_entry, vpc_entry, without_sources)

veth = addr.veth_name


def _one_network(bouncers, placements, dividers=None):
    """vpc1 (VNI 100) with net1 10.0.0.0/24; placements: [(name, ip, host)] as netns endpoints."""
    vpc = {"name": "vpc1", "vni": 100, "cidr": "10.0.0.0/16", "networks": [
        {"name": "net1", "cidr": "10.0.0.0/24", "bouncers": bouncers,
         "endpoints": [{"name": n, "ip": ip, "host": h, "netns": n} for n, ip, h in placements]}]}
    if dividers is not None:
        vpc["dividers"] = dividers
    return vpc


def _all_pairs_delivered(renderings, endpoints):
    fwd = ForwardingModel(renderings)
    for src in endpoints:
        for dst_name, dst_ip in endpoints.items():
            if dst_name != src:
                result = fwd.send(src, dst_ip)
                assert result.delivered_to == dst_name, (src, dst_name, result)


def _hosted(name, ip, host, net="vpc1/net1", vni=100):
    return ep_entry(vni, ip, "%s/%s" % (net, name), host=host, iface=veth(vni, ip))


def _remote(name, ip, host, net="vpc1/net1", vni=100):
    return ep_entry(vni, ip, "%s/%s" % (net, name), host=host)


def _agent(name, ip, bouncers, net="vpc1/net1", vni=100):
    return agent_entry(veth(vni, ip), vni, ip, "%s/%s" % (net, name), bouncers)


def _local(name, ip, gateway="10.0.0.1", net="vpc1/net1", vni=100, prefixlen=24):
    return local_ep("%s/%s" % (net, name), vni, ip, prefixlen, gateway, veth(vni, ip), netns=name)


def test_derived_names_known_values():
    digest = hashlib.sha256(b"100/10.1.0.5").hexdigest()
    assert digest.startswith("e76b32797f")
    assert addr.derived_mac(100, "10.1.0.5") == "02:e7:6b:32:79:7f"
    assert addr.veth_name(100, "10.1.0.5") == "mze76b32797f"
    assert len(addr.veth_name(16777215, "255.255.255.254")) == 12


def test_one_bouncer_two_endpoint_hosts():
    inv = {"hosts": hosts(1, 2, 3),
           "mizar_vpcs": [_one_network(["h3"], [("ep1", "10.0.0.2", "h1"), ("ep2", "10.0.0.3", "h2")])]}
    r = render_inventory(inv)
    assert without_sources(r, inv["hosts"]) == {
        "h1": rendering("h1", endpoints=[_hosted("ep1", "10.0.0.2", "h1")], substrate=[sub_entry("h3")],
                        agents=[_agent("ep1", "10.0.0.2", ["h3"])], local=[_local("ep1", "10.0.0.2")]),
        "h2": rendering("h2", endpoints=[_hosted("ep2", "10.0.0.3", "h2")], substrate=[sub_entry("h3")],
                        agents=[_agent("ep2", "10.0.0.3", ["h3"])], local=[_local("ep2", "10.0.0.3")]),
        "h3": rendering("h3", endpoints=[gw_entry(100, "10.0.0.1", "vpc1/net1/gateway"),
                                         _remote("ep1", "10.0.0.2", "h1"), _remote("ep2", "10.0.0.3", "h2")],
                        networks=[bounced_entry(100, "10.0.0.0/24", "vpc1/net1")],
                        vpcs=[vpc_entry(100, "vpc1", [], False)], substrate=[sub_entry("h1"), sub_entry("h2")]),
    }
    _all_pairs_delivered(r, {"vpc1/net1/ep1": "10.0.0.2", "vpc1/net1/ep2": "10.0.0.3"})
    fwd = ForwardingModel(r)
    assert fwd.send("vpc1/net1/ep1", "10.0.0.3").path == ["h1", "h3", "h2"]
    assert fwd.send("vpc1/net1/ep1", "10.0.0.1").drop_reason == "to_gateway"


def test_endpoint_behind_a_tunnel_peer():
    """The bouncer sends to the peer's address; nothing is made for the
    endpoint on any host, and the peer gets no rendering of its own."""
    vpc = _one_network(["h3"], [("ep1", "10.0.0.2", "h1")])
    vpc["networks"][0]["endpoints"].append({"name": "ext1", "ip": "10.0.0.20", "tunnel_peer": "vtep1",
                                            "mac": "02:00:0a:00:00:14"})
    inv = {"hosts": hosts(1, 3), "mizar_vpcs": [vpc],
           "mizar_tunnel_peers": [{"name": "vtep1", "ip": "192.168.60.7", "mac": "02:00:00:00:06:07"}]}
    r = render_inventory(inv)
    assert sorted(r) == ["h1", "h3"]
    ext = ep_entry(100, "10.0.0.20", "vpc1/net1/ext1", mac="02:00:0a:00:00:14")
    ext["host_ip"] = "192.168.60.7"
    assert r["h3"]["maps"]["endpoints"] == [gw_entry(100, "10.0.0.1", "vpc1/net1/gateway"),
                                            _remote("ep1", "10.0.0.2", "h1"), ext]
    assert r["h3"]["maps"]["substrate"] == [sub_entry("h1"), {"ip": "192.168.60.7", "mac": "02:00:00:00:06:07",
                                                              "name": "vtep1"}]
    assert [e["name"] for e in r["h1"]["local_endpoints"]] == ["vpc1/net1/ep1"]
    assert r["h3"]["local_endpoints"] == [] and r["h1"]["maps"]["substrate"] == [sub_entry("h3")]
    # the peer may send for its VPC (VNI 100) only
    without_sources(r, inv["hosts"], peers=[("192.168.60.7", 100, "vtep1")])
    fwd = ForwardingModel(r)
    to_peer = fwd.send("vpc1/net1/ep1", "10.0.0.20")
    assert (to_peer.delivered_to, to_peer.path) == ("vpc1/net1/ext1", ["h1", "h3", "vtep1"])


def test_two_bouncers():
    inv = {"hosts": hosts(1, 2, 3, 4),
           "mizar_vpcs": [_one_network(["h3", "h4"], [("ep1", "10.0.0.2", "h1"), ("ep2", "10.0.0.3", "h2")])]}
    r = render_inventory(inv)
    bouncer = dict(endpoints=[gw_entry(100, "10.0.0.1", "vpc1/net1/gateway"), _remote("ep1", "10.0.0.2", "h1"),
                              _remote("ep2", "10.0.0.3", "h2")],
                   networks=[bounced_entry(100, "10.0.0.0/24", "vpc1/net1")],
                   vpcs=[vpc_entry(100, "vpc1", [], False)], substrate=[sub_entry("h1"), sub_entry("h2")])
    assert without_sources(r, inv["hosts"]) == {
        "h1": rendering("h1", endpoints=[_hosted("ep1", "10.0.0.2", "h1")],
                        substrate=[sub_entry("h3"), sub_entry("h4")],
                        agents=[_agent("ep1", "10.0.0.2", ["h3", "h4"])], local=[_local("ep1", "10.0.0.2")]),
        "h2": rendering("h2", endpoints=[_hosted("ep2", "10.0.0.3", "h2")],
                        substrate=[sub_entry("h3"), sub_entry("h4")],
                        agents=[_agent("ep2", "10.0.0.3", ["h3", "h4"])], local=[_local("ep2", "10.0.0.3")]),
        "h3": rendering("h3", **bouncer),
        "h4": rendering("h4", **bouncer),
    }
    _all_pairs_delivered(r, {"vpc1/net1/ep1": "10.0.0.2", "vpc1/net1/ep2": "10.0.0.3"})


def test_bouncer_that_hosts_endpoints():
    inv = {"hosts": hosts(1, 2),
           "mizar_vpcs": [_one_network(["h1"], [("ep1", "10.0.0.2", "h1"), ("ep2", "10.0.0.3", "h2")])]}
    r = render_inventory(inv)
    assert without_sources(r, inv["hosts"]) == {
        "h1": rendering("h1", endpoints=[gw_entry(100, "10.0.0.1", "vpc1/net1/gateway"),
                                         _hosted("ep1", "10.0.0.2", "h1"), _remote("ep2", "10.0.0.3", "h2")],
                        networks=[bounced_entry(100, "10.0.0.0/24", "vpc1/net1")],
                        vpcs=[vpc_entry(100, "vpc1", [], False)], substrate=[sub_entry("h2")],
                        agents=[_agent("ep1", "10.0.0.2", ["h1"])], local=[_local("ep1", "10.0.0.2")]),
        "h2": rendering("h2", endpoints=[_hosted("ep2", "10.0.0.3", "h2")], substrate=[sub_entry("h1")],
                        agents=[_agent("ep2", "10.0.0.3", ["h1"])], local=[_local("ep2", "10.0.0.3")]),
    }
    _all_pairs_delivered(r, {"vpc1/net1/ep1": "10.0.0.2", "vpc1/net1/ep2": "10.0.0.3"})
    fwd = ForwardingModel(r)
    assert fwd.send("vpc1/net1/ep1", "10.0.0.3").path == ["h1", "h2"]  # the agent bounces itself
    assert fwd.send("vpc1/net1/ep2", "10.0.0.2").path == ["h2", "h1"]


def test_two_vpcs_same_cidr_on_shared_hosts():
    vpc2 = _one_network(["h3", "h1"], [("b1", "10.0.0.2", "h1"), ("b2", "10.0.0.3", "h2")])
    vpc2.update(name="vpc2", vni=200)
    inv = {"hosts": hosts(1, 2, 3),
           "mizar_vpcs": [_one_network(["h3"], [("a1", "10.0.0.2", "h1"), ("a2", "10.0.0.3", "h2")]), vpc2]}
    r = render_inventory(inv)

    def v2(fn, name, ip, *args):
        return fn(name, ip, *args, net="vpc2/net1", vni=200)

    assert without_sources(r, inv["hosts"]) == {
        "h1": rendering(
            "h1",
            endpoints=[_hosted("a1", "10.0.0.2", "h1"), gw_entry(200, "10.0.0.1", "vpc2/net1/gateway"),
                       v2(_hosted, "b1", "10.0.0.2", "h1"), v2(_remote, "b2", "10.0.0.3", "h2")],
            networks=[bounced_entry(200, "10.0.0.0/24", "vpc2/net1")],
            vpcs=[vpc_entry(200, "vpc2", [], False)],
            substrate=[sub_entry("h2"), sub_entry("h3")],
            agents=sorted([_agent("a1", "10.0.0.2", ["h3"]), v2(_agent, "b1", "10.0.0.2", ["h3", "h1"])],
                          key=lambda a: a["iface"]),
            local=[_local("a1", "10.0.0.2"), v2(_local, "b1", "10.0.0.2")]),
        "h2": rendering(
            "h2",
            endpoints=[_hosted("a2", "10.0.0.3", "h2"), v2(_hosted, "b2", "10.0.0.3", "h2")],
            substrate=[sub_entry("h1"), sub_entry("h3")],
            agents=sorted([_agent("a2", "10.0.0.3", ["h3"]), v2(_agent, "b2", "10.0.0.3", ["h3", "h1"])],
                          key=lambda a: a["iface"]),
            local=[_local("a2", "10.0.0.3"), v2(_local, "b2", "10.0.0.3")]),
        "h3": rendering(
            "h3",
            endpoints=[gw_entry(100, "10.0.0.1", "vpc1/net1/gateway"), _remote("a1", "10.0.0.2", "h1"),
                       _remote("a2", "10.0.0.3", "h2"), gw_entry(200, "10.0.0.1", "vpc2/net1/gateway"),
                       v2(_remote, "b1", "10.0.0.2", "h1"), v2(_remote, "b2", "10.0.0.3", "h2")],
            networks=[bounced_entry(100, "10.0.0.0/24", "vpc1/net1"), bounced_entry(200, "10.0.0.0/24", "vpc2/net1")],
            vpcs=[vpc_entry(100, "vpc1", [], False), vpc_entry(200, "vpc2", [], False)],
            substrate=[sub_entry("h1"), sub_entry("h2")]),
    }
    _all_pairs_delivered(r, {"vpc1/net1/a1": "10.0.0.2", "vpc1/net1/a2": "10.0.0.3"})
    _all_pairs_delivered(r, {"vpc2/net1/b1": "10.0.0.2", "vpc2/net1/b2": "10.0.0.3"})
    # the same address in the other VPC is never reached: a1 -> 10.0.0.3 is a2, not b2
    assert ForwardingModel(r).send("vpc1/net1/a1", "10.0.0.3").delivered_to == "vpc1/net1/a2"


ACL = {"name": "acl-all", "stage": "on_xdp_tx", "program": "acl", "config": {"rules": [
    {"vpc": "vpc1", "dst": "10.0.2.0/24", "protocol": "tcp", "port": 22, "action": "drop"}]}}
LB = {"name": "lb", "stage": "on_xdp_scaled_ep", "program": "scaled", "hosts": ["h1", "h3"]}
COUNT = {"name": "count", "stage": "on_xdp_pass", "program": "/opt/fn/count.c", "hosts": ["h4"],
         "config": {"every": 10}}


def _multi_network_inventory():
    return {
        "hosts": hosts(1, 2, 3, 4),
        "mizar_vpcs": [{"name": "vpc1", "vni": 100, "cidr": "10.0.0.0/16", "dividers": ["h1", "h4"], "networks": [
            {"name": "net1", "cidr": "10.0.1.0/24", "bouncers": ["h1"], "endpoints": [
                {"name": "e1", "ip": "10.0.1.10", "host": "h1", "netns": "e1"},
                {"name": "e2", "ip": "10.0.1.11", "host": "h2", "iface": "veth-e2", "mac": "02:00:0A:00:01:0B"},
            ]},
            {"name": "net2", "cidr": "10.0.2.0/24", "bouncers": ["h3"], "endpoints": [
                {"name": "e3", "ip": "10.0.2.10", "host": "h2", "netns": "e3", "bypass_decap": True},
                {"name": "e4", "ip": "10.0.2.11", "host": "h3", "netns": "e4"},
                {"name": "s1", "ip": "10.0.2.100", "type": "scaled", "backends": ["e1", {"name": "e4", "weight": 3}]},
            ]},
        ]}],
        "mizar_functions": [COUNT, ACL, LB],
    }


def test_multi_network_vpc_two_dividers():
    inv = _multi_network_inventory()
    r = render_inventory(inv)
    plain = without_sources(r, inv["hosts"])
    n1, n2 = "vpc1/net1", "vpc1/net2"
    acl = {"name": "acl-all", "stage": "on_xdp_tx", "program": "acl", "config": {"rules": [
        {"vpc": "vpc1", "src": "0.0.0.0/0", "dst": "10.0.2.0/24", "protocol": "tcp", "port": 22, "action": "drop"}]},
        "object": "/var/lib/mizar/bpf/functions/acl.bpf.o", "shipped": True}
    count = {"name": "count", "stage": "on_xdp_pass", "program": "/opt/fn/count.c", "config": {"every": 10},
             "object": "/var/lib/mizar/bpf/functions/count.bpf.o", "shipped": False}
    # the scaled function's config on h1 and h3: s1 with its ring size and weighted backends
    lb = {"name": "lb", "stage": "on_xdp_scaled_ep", "program": "scaled", "config": {"endpoints": [
        {"vpc": "vpc1", "ip": "10.0.2.100", "name": n2 + "/s1", "ring_size": 2039, "backends": [
            {"name": "e1", "ip": "10.0.1.10", "weight": 1}, {"name": "e4", "ip": "10.0.2.11", "weight": 3}]}]},
        "object": "/var/lib/mizar/bpf/functions/scaled.bpf.o", "shipped": True}
    s1 = ep_entry(100, "10.0.2.100", n2 + "/s1", type="scaled", backends=["10.0.1.10", "10.0.2.11"])
    built = {"sources": ["/opt/fn/count.c"], "vnis": {"vpc1": 100}}  # every host gets every object
    networks = [net_entry(100, "10.0.1.0/24", n1, ["h1"]), net_entry(100, "10.0.2.0/24", n2, ["h3"])]
    e2_mac = "02:00:0a:00:01:0b"
    e3_hosted = ep_entry(100, "10.0.2.10", n2 + "/e3", host="h2", iface=veth(100, "10.0.2.10"), bypass_decap=True)
    e3_remote = ep_entry(100, "10.0.2.10", n2 + "/e3", host="h2", bypass_decap=True)
    assert plain["h1"] == rendering(  # bouncer of net1, divider, endpoint host
        "h1",
        endpoints=[gw_entry(100, "10.0.1.1", n1 + "/gateway"), _hosted("e1", "10.0.1.10", "h1", n1),
                   ep_entry(100, "10.0.1.11", n1 + "/e2", host="h2", mac=e2_mac), s1],  # s1: e1's host delivers
        networks=[bounced_entry(100, "10.0.1.0/24", n1), networks[1]],
        vpcs=[vpc_entry(100, "vpc1", ["h1", "h4"], True)],
        substrate=[sub_entry("h2"), sub_entry("h3"), sub_entry("h4")],
        agents=[_agent("e1", "10.0.1.10", ["h1"], n1)],
        local=[dict(_local("e1", "10.0.1.10", "10.0.1.1", n1), vips=["10.0.2.100"])],  # s1's backend
        functions=[acl, lb], **built)
    assert plain["h2"] == rendering(  # hosts e2 (adopted interface) and e3 (bypass)
        "h2",
        endpoints=[ep_entry(100, "10.0.1.11", n1 + "/e2", host="h2", iface="veth-e2", mac=e2_mac), e3_hosted],
        substrate=[sub_entry("h1"), sub_entry("h3")],
        agents=sorted([agent_entry("veth-e2", 100, "10.0.1.11", n1 + "/e2", ["h1"], mac=e2_mac),
                       _agent("e3", "10.0.2.10", ["h3"], n2)], key=lambda a: a["iface"]),
        local=[local_ep(n1 + "/e2", 100, "10.0.1.11", 24, "10.0.1.1", "veth-e2", mac=e2_mac),
               local_ep(n2 + "/e3", 100, "10.0.2.10", 24, "10.0.2.1", veth(100, "10.0.2.10"), netns="e3",
                        bypass_decap=True)],
        functions=[acl], **built)
    assert plain["h3"] == rendering(  # bouncer of net2 (with a scaled endpoint), endpoint host
        "h3",
        endpoints=[_remote("e1", "10.0.1.10", "h1", n1), gw_entry(100, "10.0.2.1", n2 + "/gateway"), e3_remote,
                   _hosted("e4", "10.0.2.11", "h3", n2), s1],
        networks=[bounced_entry(100, "10.0.2.0/24", n2)],
        vpcs=[vpc_entry(100, "vpc1", ["h1", "h4"], False)],
        substrate=[sub_entry("h1"), sub_entry("h2"), sub_entry("h4")],
        agents=[_agent("e4", "10.0.2.11", ["h3"], n2)],
        local=[dict(_local("e4", "10.0.2.11", "10.0.2.1", n2), vips=["10.0.2.100"])],
        functions=[acl, lb], **built)
    assert plain["h4"] == rendering(  # divider only
        "h4",
        networks=networks,
        vpcs=[vpc_entry(100, "vpc1", ["h1", "h4"], True)],
        substrate=[sub_entry("h1"), sub_entry("h3")],
        functions=[acl, count], **built)
    assert sorted(r) == ["h1", "h2", "h3", "h4"]
    assert count_entries(r) == 49  # 11 + 6 + 11 + 5, and 4 trusted sources on each host
    eps = {n1 + "/e1": "10.0.1.10", n1 + "/e2": "10.0.1.11", n2 + "/e3": "10.0.2.10", n2 + "/e4": "10.0.2.11"}
    _all_pairs_delivered(r, eps)
    fwd = ForwardingModel(r)
    assert fwd.send(n1 + "/e2", "10.0.2.100").delivered_to == n2 + "/s1"  # h3 balances it
    assert fwd.send(n1 + "/e2", "10.0.3.7").drop_reason == "no_network"


def test_hosted_entry_wins_over_remote():
    r = render_inventory(_multi_network_inventory())
    h1 = dict(((e["vni"], e["ip"]), e) for e in r["h1"]["maps"]["endpoints"])
    assert h1[(100, "10.0.1.10")]["iface"] == veth(100, "10.0.1.10")
    assert len(r["h1"]["maps"]["endpoints"]) == 4  # and s1, whose backend e1 is here


def test_never_a_substrate_entry_for_itself():
    r = render_inventory(_multi_network_inventory())
    for host, rendering_ in r.items():
        assert host not in [s["name"] for s in rendering_["maps"]["substrate"]]


def test_user_source_relative_to_base_dir():
    inv = _multi_network_inventory()
    inv["mizar_functions"][0] = dict(COUNT, program="fn/count.c")
    r = render_inventory(inv, base_dir="/srv/inventory")
    assert r["h4"]["functions"][1]["program"] == "/srv/inventory/fn/count.c"


def test_function_hosts_null_runs_on_every_host():
    """hosts: null is valid and means every transit host (as a missing hosts
    does): every host renders the function, its object and its stage."""
    inv = _multi_network_inventory()
    inv["mizar_functions"][0] = dict(COUNT, hosts=None)
    r = render_inventory(inv)
    for host in ("h1", "h2", "h3", "h4"):
        lb = [{"stage": "on_xdp_scaled_ep", "object": "/var/lib/mizar/bpf/functions/scaled.bpf.o"}] \
            if host in LB["hosts"] else []
        assert [f["name"] for f in r[host]["functions"]] == ["acl-all", "count"] + (["lb"] if lb else []), host
        assert r[host]["transit"]["stages"] == [
            {"stage": "on_xdp_tx", "object": "/var/lib/mizar/bpf/functions/acl.bpf.o"},
            {"stage": "on_xdp_pass", "object": "/var/lib/mizar/bpf/functions/count.bpf.o"}] + lb, host


def test_host_settings_and_objects():
    """What the roles read: the objects directory (mizar_bpf_dir) in every
    object path, the XDP mode switch, the sources to build (all of them, on
    every host), and the VNIs where functions run."""
    inv = _multi_network_inventory()
    inv["hosts"]["h4"].update(mizar_bpf_dir="/srv/mizar", mizar_xdp_switch_mode="yes", mizar_xdp_mode="generic")
    inv["mizar_functions"].append({"name": "late", "stage": "on_xdp_drop", "program": "fn/late.bpf.c",
                                   "hosts": ["h3"]})
    r = render_inventory(inv, base_dir="/srv/inventory")
    h4 = r["h4"]
    assert h4["interface"]["xdp_mode"] == "generic"
    assert h4["transit"] == {"obj_dir": "/srv/mizar", "switch_mode": True,
                             "sources": ["/opt/fn/count.c", "/srv/inventory/fn/late.bpf.c"],
                             "stages": [{"stage": "on_xdp_tx", "object": "/srv/mizar/functions/acl.bpf.o"},
                                        {"stage": "on_xdp_pass", "object": "/srv/mizar/functions/count.bpf.o"}]}
    assert [(f["program"], f["object"], f["shipped"]) for f in h4["functions"]] == [
        ("acl", "/srv/mizar/functions/acl.bpf.o", True),
        ("/opt/fn/count.c", "/srv/mizar/functions/count.bpf.o", False)]
    h3 = r["h3"]
    assert h3["transit"]["obj_dir"] == "/var/lib/mizar/bpf" and h3["transit"]["switch_mode"] is False
    assert h3["transit"]["sources"] == h4["transit"]["sources"]
    assert h3["functions"][-2]["object"] == "/var/lib/mizar/bpf/functions/late.bpf.o"  # then on_xdp_scaled_ep
    assert h3["vnis"] == h4["vnis"] == {"vpc1": 100}
    inv["mizar_functions"] = []
    inv["mizar_vpcs"][0]["networks"][1]["endpoints"].pop()  # s1, which needs its function
    assert all(x["vnis"] == {} and x["transit"]["stages"] == [] for x in render_inventory(inv).values())


def test_facts_fill_missing_addresses():
    inv = {"hosts": hosts(1, 2, 3),
           "mizar_vpcs": [_one_network(["h3"], [("ep1", "10.0.0.2", "h1"), ("ep2", "10.0.0.3", "h2")])]}
    inv["hosts"]["h3"] = {"mizar_interface": "eth0"}
    facts = {"h3": {"ip": "192.168.50.3", "mac": "02:00:00:00:00:03"}, "h1": {"ip": "10.9.9.9"}}
    assert render_inventory(inv, facts=facts) == render_inventory(
        {"hosts": hosts(1, 2, 3), "mizar_vpcs": inv["mizar_vpcs"]})  # the inventory wins over facts (h1)


def test_unresolved_address_is_an_error():
    inv = {"hosts": hosts(1, 2, 3),
           "mizar_vpcs": [_one_network(["h3"], [("ep1", "10.0.0.2", "h1"), ("ep2", "10.0.0.3", "h2")])]}
    inv["hosts"]["h3"] = {"mizar_interface": "eth0", "mizar_underlay_ip": "192.168.50.3"}
    with pytest.raises(InvalidInventory) as info:
        render_inventory(inv)
    assert [(e.path, e.message) for e in info.value.errors] == [
        ("hostvars[h3].mizar_underlay_mac", "the underlay MAC of h3 is unknown and the maps of h1, h2, h3 need it: "
         "set mizar_underlay_mac, gather facts from h3, or render offline")]
    # only the hosts that need it count
    inv["hosts"]["h4"] = {"mizar_interface": "eth0"}
    with pytest.raises(InvalidInventory) as info:
        render_inventory(inv, hosts=["h1"])
    assert [e.path for e in info.value.errors] == ["hostvars[h3].mizar_underlay_mac"]
    assert "maps of h1 need it" in info.value.errors[0].message


def test_offline_renders_null():
    inv = {"hosts": hosts(1, 2),
           "mizar_vpcs": [_one_network(["h1"], [("ep1", "10.0.0.2", "h1"), ("ep2", "10.0.0.3", "h2")])]}
    inv["hosts"]["h2"] = {"mizar_interface": "eth0"}
    r = render_inventory(inv, offline=True)
    assert r["h1"]["maps"]["substrate"] == [{"ip": None, "mac": None, "name": "h2"}]
    assert r["h2"]["interface"]["ip"] is None
    assert r["h2"]["maps"]["agents"][0]["bouncers"] == ["192.168.50.1"]
    assert r["h1"]["maps"]["endpoints"][2]["host_ip"] is None
    assert "host_ip: null" in dump(r["h1"])


def test_limit_to_some_hosts():
    r = render_inventory(_multi_network_inventory(), hosts=["h4", "h2"])
    assert sorted(r) == ["h2", "h4"]
    with pytest.raises(InvalidInventory) as info:
        render_inventory(_multi_network_inventory(), hosts=["h9"])
    assert "cannot render 'h9'" in str(info.value)


def test_invalid_inventory_renders_nothing():
    inv = base()
    inv["mizar_vpcs"][0]["vni"] = 0
    with pytest.raises(InvalidInventory) as info:
        render_inventory(inv)
    assert [e.path for e in info.value.errors] == ["mizar_vpcs[0].vni"]


def test_discovered_addresses_must_differ():
    inv = {"hosts": {"h1": {"mizar_interface": "eth0"}, "h2": {"mizar_interface": "eth0"}},
           "mizar_vpcs": [_one_network(["h1"], [("ep2", "10.0.0.3", "h2")])]}
    facts = {"h1": {"ip": "192.168.50.1", "mac": "02:00:00:00:00:01"},
             "h2": {"ip": "192.168.50.1", "mac": "02:00:00:00:00:02"}}
    with pytest.raises(InvalidInventory) as info:
        render_inventory(inv, facts=facts)
    assert [e.path for e in info.value.errors] == ["facts[h2].ip"]


def test_base_inventory_entries():
    r = render_inventory(base())
    # vpc2's bouncer h1 holds vpc2; vpc1's divider h3 holds both networks of vpc1
    assert [v["name"] for v in r["h1"]["maps"]["vpcs"]] == ["vpc2"]
    assert [n["name"] for n in r["h3"]["maps"]["networks"]] == ["vpc1/net1", "vpc1/net2"]
    lb = [e for e in r["h3"]["maps"]["endpoints"] if e["name"] == "vpc1/net1/lb"][0]
    assert lb["backends"] == ["10.1.0.5", "10.1.0.6"] and lb["type"] == "scaled" and lb["host_ip"] is None
    assert [f["name"] for f in r["h2"]["functions"]] == ["acl1", "lb1"]


# ------------------------------------------------------------------ determinism

def _shuffled(inv, rng):
    inv = copy.deepcopy(inv)
    names = list(inv["hosts"])
    rng.shuffle(names)
    inv["hosts"] = dict((n, inv["hosts"][n]) for n in names)
    rng.shuffle(inv["mizar_vpcs"])
    for vpc in inv["mizar_vpcs"]:
        rng.shuffle(vpc["networks"])
        for net in vpc["networks"]:
            rng.shuffle(net["endpoints"])
    rng.shuffle(inv["mizar_functions"])
    return inv


def _dumps(inv):
    r = render_inventory(inv)
    return dict((host, dump(r[host])) for host in r)


def test_byte_identical_in_any_order():
    rng = random.Random(20240601)
    for inv in (base(), _multi_network_inventory()):
        reference = _dumps(inv)
        for dummy in range(25):
            assert _dumps(_shuffled(inv, rng)) == reference


def test_bouncer_order_is_the_inventory_order():
    inv = base()
    inv["mizar_vpcs"][0]["networks"][0]["bouncers"] = ["h3", "h2"]
    first = render_inventory(inv)["h1"]["maps"]["agents"]
    inv["mizar_vpcs"][0]["networks"][0]["bouncers"] = ["h2", "h3"]
    second = render_inventory(inv)["h1"]["maps"]["agents"]
    ep1 = [a for a in first if a["name"] == "vpc1/net1/ep1"][0]
    assert ep1["bouncers"] == ["192.168.50.3", "192.168.50.2"]
    assert [a for a in second if a["name"] == "vpc1/net1/ep1"][0]["bouncers"] == ["192.168.50.2", "192.168.50.3"]


def test_dump_is_plain_yaml():
    text = dump(render_inventory(base())["h3"])
    assert "&id" not in text and "!!" not in text
    assert text.startswith("functions:\n")
