"""The forwarding model: the datapath's hash, its steps, and reachability as a property."""
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.mizar.transit.plugins.module_utils.model.forwarding import (
    OUTER_TTL, ForwardingModel, Result, flow_hash, mix32, pick)
from ansible_collections.mizar.transit.plugins.module_utils.model.render import render_inventory
from ansible_collections.mizar.transit.plugins.module_utils.model.validate import validate

from unit_inventory import hostvars, ip_of, mac_of

# mzr_flow_hash and mzr_pick from bpf/include/mzr_hash.h, compiled with gcc on x86-64
# (addresses from inet_addr, i.e. network byte order loaded as a little-endian u32).
C_REFERENCE = [
    ("10.0.0.2", "10.0.0.3", 0xD1430E37, 1, 5),
    ("10.0.0.3", "10.0.0.2", 0xD1430E37, 1, 5),
    ("10.1.0.5", "10.1.1.5", 0x4B1A5753, 0, 2),
    ("192.168.1.1", "0.0.0.0", 0x0DEE4EA6, 0, 0),
    ("255.255.255.255", "255.255.255.255", 0x7ED47951, 0, 3),
]


@pytest.mark.parametrize("src,dst,h,pick2,pick7", C_REFERENCE)
def test_hash_matches_the_datapath(src, dst, h, pick2, pick7):
    assert flow_hash(src, dst) == h
    assert pick(h, 2) == pick2
    assert pick(h, 7) == pick7


def test_mix32_is_a_32_bit_bijection_on_samples():
    outs = set(mix32(x) for x in range(4096))
    assert len(outs) == 4096 and max(outs) < 1 << 32
    assert mix32(0) == 0


@given(st.integers(0, 0xFFFFFFFF), st.integers(1, 128))
def test_pick_in_range(h, n):
    assert 0 <= pick(h, n) < n


def _tables(**hosts_maps):
    """Hand-made renderings: host -> dict of maps (missing maps empty)."""
    out = {}
    for host, maps in hosts_maps.items():
        full = {"endpoints": [], "networks": [], "vpcs": [], "substrate": [], "agents": [],
                "sources": [{"ip": ip_of(h), "vni": 0} for h in hosts_maps]}
        full.update(maps)
        out[host] = {"host": host, "interface": {"name": "eth0", "ip": ip_of(host), "mac": mac_of(host)},
                     "maps": full}
    return out


def _sub(host):
    return {"ip": ip_of(host), "mac": mac_of(host), "name": host}


def _agent(name, ip, bouncers, vni=100):
    return {"iface": "mz" + name, "vni": vni, "ip": ip, "mac": "02:00:00:00:01:01", "name": name,
            "bouncers": [ip_of(b) for b in bouncers]}


def _ep(name, ip, host=None, iface=None, type="simple", vni=100):
    return {"vni": vni, "ip": ip, "name": name, "type": type, "host_ip": ip_of(host) if host else None,
            "iface": iface, "mac": "02:00:00:00:02:02", "bypass_decap": False, "backends": []}


def test_drop_reasons():
    src = _agent("a", "10.0.0.2", ["h2"])
    # no substrate entry for the bouncer
    r = ForwardingModel(_tables(h1={"agents": [src]}, h2={})).send("a", "10.0.0.3")
    assert r == Result(None, ["h1"], "no_substrate")
    # bouncer without the VPC
    r = ForwardingModel(_tables(h1={"agents": [src], "substrate": [_sub("h2")]}, h2={})).send("a", "10.0.0.3")
    assert r == Result(None, ["h1", "h2"], "unknown_vni")
    # bouncer that is the VPC's divider but knows no network for it
    vpc = {"vni": 100, "name": "v", "dividers": [ip_of("h2")], "local_divider": True}
    r = ForwardingModel(_tables(h1={"agents": [src], "substrate": [_sub("h2")]},
                                h2={"vpcs": [vpc]})).send("a", "10.0.0.3")
    assert r.drop_reason == "no_network"
    # a VPC with no dividers
    vpc = {"vni": 100, "name": "v", "dividers": [], "local_divider": False}
    r = ForwardingModel(_tables(h1={"agents": [src], "substrate": [_sub("h2")]},
                                h2={"vpcs": [vpc]})).send("a", "10.0.0.3")
    assert r.drop_reason == "no_hops"
    # an endpoint entry pointing back at the host itself
    r = ForwardingModel(_tables(h1={"agents": [src], "substrate": [_sub("h2")]},
                                h2={"endpoints": [_ep("b", "10.0.0.3", host="h2")]})).send("a", "10.0.0.3")
    assert r == Result(None, ["h1", "h2"], "loop")
    # two hosts bouncing between each other until the TTL runs out
    r = ForwardingModel(_tables(h1={"agents": [src], "substrate": [_sub("h2")]},
                                h2={"endpoints": [_ep("b", "10.0.0.3", host="h3")], "substrate": [_sub("h3")]},
                                h3={"endpoints": [_ep("b", "10.0.0.3", host="h2")], "substrate": [_sub("h2")]},
                                )).send("a", "10.0.0.3")
    assert r.drop_reason == "ttl" and len(r.path) == OUTER_TTL + 1
    # a substrate MAC that is not the next host's
    bad = dict(_sub("h2"), mac="02:99:99:99:99:99")
    r = ForwardingModel(_tables(h1={"agents": [src], "substrate": [bad]}, h2={})).send("a", "10.0.0.3")
    assert r.drop_reason == "substrate_mismatch"
    # a next host that does not trust this one as a tunnel source, or only for another VPC
    for sources in ([], [{"ip": ip_of("h1"), "vni": 200}]):
        r = ForwardingModel(_tables(h1={"agents": [src], "substrate": [_sub("h2")]},
                                    h2={"sources": sources})).send("a", "10.0.0.3")
        assert r == Result(None, ["h1"], "untrusted_src")
    # an agent with no bouncers
    r = ForwardingModel(_tables(h1={"agents": [_agent("a", "10.0.0.2", [])]})).send("a", "10.0.0.3")
    assert r.drop_reason == "no_hops"


def test_local_delivery_never_leaves_the_host():
    t = _tables(h1={"agents": [_agent("a", "10.0.0.2", ["h2"])],
                    "endpoints": [_ep("b", "10.0.0.3", host="h1", iface="mzb")]})
    assert ForwardingModel(t).send("a", "10.0.0.3") == Result("b", ["h1"])


def test_unknown_source():
    with pytest.raises(KeyError):
        ForwardingModel({}).send("nobody", "10.0.0.1")


# ---------------------------------------------------------------- reachability property


@st.composite
def inventories(draw):
    """Small valid inventories: 2-5 hosts, 1-3 VPCs (CIDRs may coincide), 1-3 networks each,
    1-2 bouncers per network, dividers where needed, 0-3 endpoints per network, maybe a scaled one."""
    nhosts = draw(st.integers(2, 5))
    names = ["h%d" % i for i in range(1, nhosts + 1)]
    inv = {"hosts": dict((n, hostvars(i)) for i, n in enumerate(names, 1)), "mizar_vpcs": []}
    for v in range(draw(st.integers(1, 3))):
        second = draw(st.integers(0, 1))  # VPCs share 10.0.0.0/16 unless drawn otherwise
        nnets = draw(st.integers(1, 3))
        ndiv = draw(st.integers(1 if nnets > 1 else 0, 2))
        vpc = {"name": "v%d" % v, "vni": 100 + v, "cidr": "10.%d.0.0/16" % second,
               "dividers": draw(st.permutations(names))[:ndiv], "networks": []}
        for k in range(nnets):
            nb = draw(st.integers(1, 2))
            net = {"name": "n%d" % k, "cidr": "10.%d.%d.0/24" % (second, k),
                   "bouncers": draw(st.permutations(names))[:nb], "endpoints": []}
            for j in range(draw(st.integers(0, 3))):
                name = "v%dn%de%d" % (v, k, j)
                ep = {"name": name, "ip": "10.%d.%d.%d" % (second, k, 10 + j), "host": draw(st.sampled_from(names)),
                      "bypass_decap": draw(st.booleans())}
                if draw(st.booleans()):
                    ep["netns"] = name
                else:
                    ep["iface"] = "t" + name
                net["endpoints"].append(ep)
            vpc["networks"].append(net)
        simple = [e["name"] for n in vpc["networks"] for e in n["endpoints"] if not e["bypass_decap"]]
        if simple and draw(st.booleans()):
            inv["mizar_functions"] = [{"name": "lb", "stage": "on_xdp_scaled_ep", "program": "scaled"}]
            vpc["networks"][0]["endpoints"].append(
                {"name": "lb", "ip": "10.%d.0.200" % second, "type": "scaled",
                 "backends": draw(st.lists(st.sampled_from(simple), min_size=1, max_size=3, unique=True))})
        inv["mizar_vpcs"].append(vpc)
    return inv


def _endpoints(inv):
    for vpc in inv["mizar_vpcs"]:
        for net in vpc["networks"]:
            for ep in net["endpoints"]:
                yield vpc["name"], "%s/%s/%s" % (vpc["name"], net["name"], ep["name"]), ep


def _referenced_hosts(r):
    maps = r["maps"]
    ips = set(e["host_ip"] for e in maps["endpoints"] if e["host_ip"])
    for name, key in (("networks", "bouncers"), ("vpcs", "dividers"), ("agents", "bouncers")):
        for e in maps[name]:
            ips.update(e[key])
    return ips


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inventories())
def test_reachable_within_vpc_and_isolated_across(inv):
    assert list(validate(inv)) == []
    renderings = render_inventory(inv)
    for r in renderings.values():
        # the codec refers to hosts by substrate slot: every host IP in an entry has one (or is this host)
        substrate = set(s["ip"] for s in r["maps"]["substrate"])
        assert _referenced_hosts(r) - substrate <= {r["interface"]["ip"]}
        assert r["interface"]["ip"] not in substrate
    fwd = ForwardingModel(renderings)
    eps = list(_endpoints(inv))
    by_name = dict((name, vpc) for vpc, name, dummy in eps)
    for src_vpc, src, sep in eps:
        if sep.get("type") == "scaled":
            continue
        for dst_vpc, dst, dep in eps:
            if dst == src:
                continue
            result = fwd.send(src, dep["ip"])
            assert len(result.path) <= OUTER_TTL + 1
            if dst_vpc == src_vpc:
                # a scaled endpoint too: its function (on every host) serves it
                assert result.delivered_to == dst, (src, dst, result)
            else:
                # never into another VPC; the same address in its own VPC is that endpoint
                assert result.delivered_to is None or by_name[result.delivered_to] == src_vpc, (src, dst, result)
        # the gateway of its own network answers no IPv4
        gw = sep["ip"].rsplit(".", 1)[0] + ".1"
        assert fwd.send(src, gw).drop_reason == "to_gateway"
