"""A stage function holds wherever the pipeline's work is done: the ACL
(bpf/functions/acl.bpf.c) on real traffic, for every placement of sender,
receiver and bouncer. Before the agent ran the stages, a same-host flow and
a flow from an endpoint on its own bouncer's host got past the rules that
stopped the same flow arriving over the substrate.

  VPC A (VNI 1000): 10.0.0.0/24 bounced by h3, 10.0.1.0/24 by h2; h3 divides
    a1 10.0.0.2 (h1)  a2 10.0.0.3 (h1)  a3 10.0.0.4 (h2)  b1 10.0.1.2 (h2)
  VPC B (VNI 2000): 10.0.0.0/24 bounced by h1 (co-located with c1)
    c1 10.0.0.2 (h1)  c2 10.0.0.3 (h2)

The rule drops UDP to port 7777 in both VPCs; port 7778 and ping must
still flow. Each datagram that matches is dropped exactly once, on the host
the stage semantics name (docs/architecture.md, "Stages")."""
import os
import select
import socket

import pytest

from ansible_collections.mizar.transit.plugins.module_utils import nsenter
from ansible_collections.mizar.transit.plugins.module_utils.bpf import fnconfig, libbpf, stages

from ansible_collections.mizar.transit.plugins.module_utils.host import netlink

from .conftest import BPF_OUT, RUN
from .topology import Lab, recv

A, B = 1000, 2000
VNIS = {"A": A, "B": B}
BLOCKED, OPEN = 7777, 7778
ACL_OBJ = os.path.join(BPF_OUT, "functions", "acl.bpf.o")
ACL_PROGS = {"on_xdp_redirect": "acl_on_xdp_redirect", "on_xdp_tx": "acl_on_xdp_tx"}
RULES = [{"vpc": v, "src": "0.0.0.0/0", "dst": "0.0.0.0/0", "protocol": "udp", "port": BLOCKED,
          "action": "drop"} for v in ("A", "B")]

# placement -> (sender, receiver, receiver's address, host whose stage drops:
#               with the ACL at ON_XDP_REDIRECT, with it at ON_XDP_TX (None: no forwarding hop))
PLACEMENTS = {
    "same-host": ("a1", "a2", "10.0.0.3", "h1", None),
    "remote-bouncer": ("a1", "a3", "10.0.0.4", "h2", "h3"),
    "through-divider": ("a1", "b1", "10.0.1.2", "h2", "h3"),
    "colocated-bouncer": ("c1", "c2", "10.0.0.3", "h2", "h1"),
}


@pytest.fixture(scope="module")
def lab():
    prefix = "%s-stp" % RUN
    lab = Lab(prefix, BPF_OUT)
    lab.destroy()
    lab.vpc(A, "10.0.0.0/24", bouncers=["h3"], dividers=["h3"])
    lab.network(A, "10.0.1.0/24", bouncers=["h2"])
    lab.vpc(B, "10.0.0.0/24", bouncers=["h1"])
    lab.endpoint("a1", A, "10.0.0.2", "h1")
    lab.endpoint("a2", A, "10.0.0.3", "h1")
    lab.endpoint("a3", A, "10.0.0.4", "h2")
    lab.endpoint("b1", A, "10.0.1.2", "h2")
    lab.endpoint("c1", B, "10.0.0.2", "h1")
    lab.endpoint("c2", B, "10.0.0.3", "h2")
    try:
        lab.build()
        for src, dummy, dst_ip, dummy, dummy in PLACEMENTS.values():  # resolve ARP, prove the paths
            sent, received, out = lab.ping(src, dst_ip)
            assert (sent, received) == (3, 3), out
        yield lab
    finally:
        errors = lab.destroy()
        assert not errors, errors
        assert not [n for n in nsenter.netns_list() if n.startswith(prefix + "-")]


def _maps(lab, h):
    return os.path.join(lab.loaders[h].pin_dir, "maps")


@pytest.fixture
def acl(lab):
    """Install the ACL in the requested stages of every host; empty them after."""
    installed = []

    def install(stage_names):
        for h in lab.hosts:
            st = stages.Stages(lab.loaders[h].pin_dir)
            for s in stage_names:
                st.install(s, ACL_OBJ, ACL_PROGS[s])
                installed.append((st, s))
            fnconfig.configurator("acl").converge(_maps(lab, h), {"rules": RULES}, VNIS)

    yield install
    for st, s in installed:
        st.remove(s)


def _dropped(lab):
    out = {}
    for h in lab.hosts:
        path = os.path.join(_maps(lab, h), "mzr_acl_stats")
        if not os.path.exists(path):
            out[h] = 0
            continue
        with libbpf.Map.from_pin(path) as m:
            out[h] = sum(int.from_bytes(v, "little") for v in m.lookup((1).to_bytes(4, "little")))
    return out


def _send(lab, src, dst, dst_ip):
    """One datagram to each port; returns what arrived on each."""
    servers = dict((p, lab.udp(dst, (dst_ip, p))) for p in (BLOCKED, OPEN))
    client = lab.udp(src)
    try:
        for p in (BLOCKED, OPEN):
            client.sendto(b"to %d" % p, (dst_ip, p))
        return dict((p, recv(servers[p], 2 if p == OPEN else 0.5)[0]) for p in (BLOCKED, OPEN))
    finally:
        for s in list(servers.values()) + [client]:
            s.close()


@pytest.mark.parametrize("stage", ["on_xdp_redirect", "on_xdp_tx"])
@pytest.mark.parametrize("placement", sorted(PLACEMENTS))
def test_acl_holds_in_every_placement(lab, acl, stage, placement):
    src, dst, dst_ip, at_redirect, at_tx = PLACEMENTS[placement]
    acl([stage])
    dropper = at_redirect if stage == "on_xdp_redirect" else at_tx
    before = _dropped(lab)
    got = _send(lab, src, dst, dst_ip)
    after = _dropped(lab)
    assert got[OPEN] == b"to %d" % OPEN, "other traffic must still flow"
    if dropper is None:  # a same-host delivery crosses no forwarding hop: ON_XDP_TX never sees it
        assert got[BLOCKED] == b"to %d" % BLOCKED
        assert after == before
    else:
        assert got[BLOCKED] is None, "%s: the ACL at %s let the datagram through" % (placement, stage)
        assert dict((h, after[h] - before[h]) for h in lab.hosts) == dict(
            (h, 1 if h == dropper else 0) for h in lab.hosts)
    sent, received, out = lab.ping(src, dst_ip, count=2)
    assert (sent, received) == (2, 2), out


def test_acl_in_both_stages_drops_once(lab, acl):
    """Installed at both stages, a datagram crossing a bouncer is dropped by
    the first that meets it, and counted once."""
    acl(["on_xdp_redirect", "on_xdp_tx"])
    for placement, (src, dst, dst_ip, at_redirect, at_tx) in sorted(PLACEMENTS.items()):
        before = _dropped(lab)
        got = _send(lab, src, dst, dst_ip)
        after = _dropped(lab)
        assert (got[BLOCKED], got[OPEN]) == (None, b"to %d" % OPEN), placement
        first = at_tx or at_redirect
        assert dict((h, after[h] - before[h]) for h in lab.hosts) == dict(
            (h, 1 if h == first else 0) for h in lab.hosts), placement


# ------------------------------------------------------------------ ARP and multicast at the agent

def _raw(lab, ep):
    s = netlink.netns_socket(lab.ns(ep), socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0806))
    s.bind(("eth0", 0x0806))
    return s


def _arp_frame(sha, spa, tpa, op=1):
    mac = bytes.fromhex(sha.replace(":", ""))
    return (b"\xff" * 6 + mac + b"\x08\x06" + bytes([0, 1, 8, 0, 6, 4, 0, op]) + mac + socket.inet_aton(spa)
            + bytes(6) + socket.inet_aton(tpa))


def _replies(sock, timeout):
    """ARP replies arriving within timeout: [(sha, spa, tha, tpa)]."""
    out = []
    while True:
        r, dummy, dummy = select.select([sock], [], [], timeout)
        if not r:
            return out
        f = sock.recv(2048)
        if f[20:22] == b"\x00\x02":
            out.append((f[22:28].hex(":"), socket.inet_ntoa(f[28:32]), f[32:38].hex(":"), socket.inet_ntoa(f[38:42])))


@pytest.mark.parametrize("prober,target,owner", [
    ("a1", "10.0.0.3", "a2"),  # same host: the agent answers
    ("c1", "10.0.0.3", "c2"),  # this host is the bouncer: the agent answers
], ids=["same-host", "colocated-bouncer"])
def test_rfc5227_probe_is_answered_as_the_owner_would(lab, prober, target, owner):
    me = lab.endpoints[prober].mac
    s = _raw(lab, prober)
    try:
        s.send(_arp_frame(me, "0.0.0.0", target))
        got = _replies(s, 1)
    finally:
        s.close()
    assert got == [(lab.endpoints[owner].mac, target, me, "0.0.0.0")]


def test_rfc5227_probe_through_a_remote_bouncer_is_dropped_there(lab):
    """The answer to a probe is addressed to 0.0.0.0: nothing could route it
    back to the prober's host. The bouncer drops the probe, counted."""
    me = lab.endpoints["a1"].mac
    before = lab.all_counters()
    s = _raw(lab, "a1")
    try:
        s.send(_arp_frame(me, "0.0.0.0", "10.0.0.4"))
        got = _replies(s, 1)
    finally:
        s.close()
    assert got == []
    d = lab.counter_deltas(before)
    assert d["h1"] == {"redirect": 1, "agent_encap": 1} and d["h3"] == {"drop": 1, "arp_sender": 1}, d


def test_arp_about_the_endpoints_own_address_stays_at_the_agent(lab):
    me = lab.endpoints["a1"].mac
    before = lab.all_counters()
    s = _raw(lab, "a1")
    try:
        s.send(_arp_frame(me, "0.0.0.0", "10.0.0.2"))   # probe of its own address
        s.send(_arp_frame(me, "10.0.0.2", "10.0.0.2"))  # announcement
        got = _replies(s, 1)
    finally:
        s.close()
    assert got == [], "nobody else owns the address: nobody answers"
    d = lab.counter_deltas(before)
    assert d["h1"] == {"drop": 2, "arp_gratuitous": 2} and d["h2"] == {} and d["h3"] == {}, d


def test_multicast_and_broadcast_stop_at_the_agent(lab):
    before = lab.all_counters()
    s = lab.udp("a1")
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        s.sendto(b"mdns", ("224.0.0.251", 5353))
        s.sendto(b"limited", ("255.255.255.255", 9))
        s.sendto(b"subnet", ("10.0.0.255", 9))  # the subnet broadcast: Ethernet broadcast
    finally:
        s.close()
    d = lab.counter_deltas(before)
    assert d["h1"] == {"drop": 3, "agent_mcast": 3} and d["h2"] == {} and d["h3"] == {}, d
