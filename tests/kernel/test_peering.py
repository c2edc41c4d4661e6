"""VPC peering with real traffic: four hosts in namespaces, native XDP.

  blue  (VNI 1000, 10.1.0.0/16): 10.1.1.0/24 bounced and divided by h3
        a1 10.1.1.2 on h1
  red   (VNI 2000, 10.2.0.0/16): 10.2.1.0/24 bounced and divided by h4
        b1 10.2.1.2 on h2
  green (VNI 3000, 10.2.0.0/16, red's CIDR again): 10.2.1.0/24 bounced and
        divided by h4, peered with nobody
        c1 10.2.1.2 on h1

blue and red are peered: a1's packets for 10.2.1.2 go h1 -> h3 (blue's
divider: VNI rewritten to red's) -> h4 (red's divider and bouncer) -> h2,
and the replies the same way back through h4 and h3. The last test removes
the peering."""
import os

import pytest

from ansible_collections.mizar.transit.plugins.module_utils.bpf import fnconfig, libbpf, stages

from .conftest import BPF_OUT, RUN
from .topology import Lab, recv

BLUE, RED, GREEN = 1000, 2000, 3000
PORT, BLOCKED = 6100, 6101
ACL_OBJ = os.path.join(BPF_OUT, "functions", "acl.bpf.o")


@pytest.fixture(scope="module")
def lab():
    prefix = "%s-peer" % RUN
    lab = Lab(prefix, BPF_OUT, hosts=("h1", "h2", "h3", "h4"))
    lab.destroy()
    lab.vpc(BLUE, "10.1.1.0/24", bouncers=["h3"], dividers=["h3"], vpc_cidr="10.1.0.0/16")
    lab.vpc(RED, "10.2.1.0/24", bouncers=["h4"], dividers=["h4"], vpc_cidr="10.2.0.0/16")
    lab.vpc(GREEN, "10.2.1.0/24", bouncers=["h4"], dividers=["h4"], vpc_cidr="10.2.0.0/16")
    lab.endpoint("a1", BLUE, "10.1.1.2", "h1")
    lab.endpoint("b1", RED, "10.2.1.2", "h2")
    lab.endpoint("c1", GREEN, "10.2.1.2", "h1")
    lab.peering(BLUE, RED)
    try:
        lab.build()
        yield lab
    finally:
        lab.destroy_checked()


def _exchange(lab, client, server_eps, dst_ip, port, msg):
    """client sends msg to dst_ip:port, where every endpoint of server_eps
    listens; the one that gets it answers. Returns (who got it, the answer
    the client got)."""
    servers = dict((ep, lab.udp(ep, (dst_ip, port))) for ep in server_eps)
    c = lab.udp(client)
    try:
        c.sendto(msg, (dst_ip, port))
        got = []
        for ep, s in sorted(servers.items()):
            data, peer = recv(s, 2)
            if data is not None:
                got.append(ep)
                s.sendto(b"re: " + data, peer)
        data, peer = recv(c, 2)
        return got, (data, peer)
    finally:
        for s in list(servers.values()) + [c]:
            s.close()


def test_ping_across_the_peering_both_ways(lab):
    before = lab.all_counters()
    for src, dst_ip in (("a1", "10.2.1.2"), ("b1", "10.1.1.2")):
        sent, received, out = lab.ping(src, dst_ip)
        assert (sent, received) == (3, 3), "%s to %s: %s" % (src, dst_ip, out)
    d = lab.counter_deltas(before)
    # every request and reply crossed at a divider: blue's (h3) one way, red's (h4) the other
    assert d["h3"].get("to_peer", 0) >= 6 and d["h4"].get("to_peer", 0) >= 6, d
    assert not [h for h in lab.hosts if d[h].get("drop")], d


def test_udp_reaches_the_peer_not_the_vpc_reusing_its_cidr(lab):
    got, answer = _exchange(lab, "a1", ("b1", "c1"), "10.2.1.2", PORT, b"blue to red")
    assert got == ["b1"], "the datagram must reach red's 10.2.1.2 only"
    assert answer == (b"re: blue to red", ("10.2.1.2", PORT))


def test_a_vpc_reusing_the_cidr_stays_isolated(lab):
    before = lab.all_counters()
    sent, received, out = lab.ping("c1", "10.1.1.2", count=2, timeout=1)
    assert received == 0, out
    d = lab.counter_deltas(before)
    assert d["h4"].get("no_network", 0) == 2 and not d["h4"].get("to_peer"), d


def test_an_acl_at_on_xdp_tx_restricts_what_crosses(lab):
    """The ACL on blue's divider, at ON_XDP_TX, sees the packet as it leaves:
    with red's VNI. A rule of VPC red for sources in blue's CIDR holds only
    what crosses from blue."""
    maps = os.path.join(lab.loaders["h3"].pin_dir, "maps")
    st = stages.Stages(lab.loaders["h3"].pin_dir)
    st.install("on_xdp_tx", ACL_OBJ, "acl_on_xdp_tx")
    try:
        rules = [{"vpc": "red", "src": "10.1.0.0/16", "dst": "10.2.1.0/24", "protocol": "udp", "port": BLOCKED,
                  "action": "drop"}]
        fnconfig.configurator("acl").converge(maps, {"rules": rules}, {"red": RED})
        got, answer = _exchange(lab, "a1", ("b1",), "10.2.1.2", BLOCKED, b"blocked")
        assert got == [] and answer == (None, None)
        got, answer = _exchange(lab, "a1", ("b1",), "10.2.1.2", PORT, b"open")
        assert got == ["b1"] and answer[0] == b"re: open"
        with libbpf.Map.from_pin(os.path.join(maps, "mzr_acl_stats")) as m:
            dropped = sum(int.from_bytes(v, "little") for v in m.lookup((1).to_bytes(4, "little")))
        assert dropped == 1
    finally:
        st.remove("on_xdp_tx")


def test_removing_the_peering_cuts_traffic_and_leaves_no_entries(lab):
    lab.peerings = []
    lab.converge()
    for h in ("h3", "h4"):
        state = lab.loaders[h].read_state()
        assert state["peers"] == {}, h
        assert [v["peer_plens"] for v in state["vpcs"].values()] == ([[], []] if h == "h4" else [[]]), h
    before = lab.all_counters()
    sent, received, out = lab.ping("a1", "10.2.1.2", count=2, timeout=1)
    assert received == 0, out
    d = lab.counter_deltas(before)
    assert d["h3"].get("no_network", 0) == 2 and not d["h3"].get("to_peer"), d
