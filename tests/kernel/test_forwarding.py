"""Real traffic through the XDP datapath: three hosts in namespaces on a
bridge, endpoints in their own namespaces, native XDP on every veth, and a
bouncer either on its own host (h3) or co-located with an endpoint host
(h1, where the agent does the bouncer's work).

VPC A (VNI 1000) and VPC B (VNI 2000) both use 10.0.0.0/24:

  ep1 10.0.0.2 on h1 (A)    ep2 10.0.0.3 on h2 (A)    ep5 10.0.0.4 on h2 (A)
  ep3 10.0.0.2 on h1 (B)    ep4 10.0.0.3 on h2 (B)
"""
import socket

import pytest

from ansible_collections.mizar.transit.plugins.module_utils import nsenter
from ansible_collections.mizar.transit.plugins.module_utils.bpf import xdp

from ansible_collections.mizar.transit.plugins.module_utils.host import netlink

from .conftest import BPF_OUT, RUN
from .topology import Lab, recv

A, B = 1000, 2000
PORT = 5555


@pytest.fixture(scope="module", params=["h3", "h1"], ids=["bouncer-h3", "bouncer-colocated-h1"])
def lab(request):
    bouncer = request.param
    prefix = "%s-l%s" % (RUN, bouncer)
    lab = Lab(prefix, BPF_OUT)
    lab.destroy()  # a previous aborted run of this very process id
    lab.vpc(A, bouncers=[bouncer])
    lab.vpc(B, bouncers=[bouncer])
    lab.endpoint("ep1", A, "10.0.0.2", "h1")
    lab.endpoint("ep2", A, "10.0.0.3", "h2")
    lab.endpoint("ep5", A, "10.0.0.4", "h2")
    lab.endpoint("ep3", B, "10.0.0.2", "h1")
    lab.endpoint("ep4", B, "10.0.0.3", "h2")
    lab.bouncer = bouncer
    try:
        lab.build()
        yield lab
    finally:
        errors = lab.destroy()
        assert not errors, errors
        assert not [n for n in nsenter.netns_list() if n.startswith(prefix + "-")]


def test_everything_attached_natively(lab):
    for h in lab.hosts:
        roles = sorted((a["role"], a["mode"]) for a in lab.loaders[h].attachments())
        n_local = len(lab.local_endpoints(h))
        assert roles == sorted([("transit", "native"), ("pass", "native")] + [("agent", "native")] * n_local
                               + [("pass", "native")] * n_local), h
        q = xdp.query("eth0", netns=lab.ns(h))
        assert (q["prog_name"], q["mode"], q["via"]) == ("mzr_transit", "native", "link")


def test_ping_within_a_vpc_through_the_bouncer(lab):
    before = lab.all_counters()
    sent, received, out = lab.ping("ep1", "10.0.0.3")
    assert (sent, received) == (3, 3), out
    sent, received, out = lab.ping("ep2", "10.0.0.2")
    assert (sent, received) == (3, 3), out
    after = lab.all_counters()

    # ARP was answered by the bouncer with the endpoint's own MAC
    assert lab.neighbour_mac("ep1", "10.0.0.3") == lab.endpoints["ep2"].mac
    assert lab.neighbour_mac("ep2", "10.0.0.2") == lab.endpoints["ep1"].mac

    d = lab.counter_deltas(before, after)
    bouncer = d[lab.bouncer]
    assert bouncer.get("arp_reply", 0) >= 1, d
    assert bouncer.get("bounce", 0) >= 1, d
    assert d["h2"].get("decap", 0) >= 3 and d["h2"].get("agent_encap", 0) >= 3, d
    assert d["h1"].get("agent_encap", 0) >= 3, d
    if lab.bouncer == "h3":
        assert d["h1"].get("decap", 0) >= 3, d
        assert d["h3"].get("tx", 0) >= 6, "bounced in XDP_TX: %s" % d
    bad = ("agent_nocfg", "agent_spoof", "no_substrate", "no_hops", "unknown_vni", "loop", "ttl")
    for h in lab.hosts:
        assert not [k for k in bad if d[h].get(k)], (h, d[h])


def test_udp_exchange_stays_in_its_vpc(lab):
    servers = dict((ep, lab.udp(ep, ("10.0.0.3", PORT))) for ep in ("ep2", "ep4"))
    clients = dict((ep, lab.udp(ep)) for ep in ("ep1", "ep3"))
    try:
        for client, server, other, msg in (("ep1", "ep2", "ep4", b"to A"), ("ep3", "ep4", "ep2", b"to B")):
            clients[client].sendto(msg, ("10.0.0.3", PORT))
            data, peer = recv(servers[server], 5)
            assert data == msg, "%s got nothing from %s" % (server, client)
            assert peer[0] == "10.0.0.2"
            servers[server].sendto(b"re: " + data, peer)
            data, peer = recv(clients[client], 5)
            assert (data, peer) == (b"re: " + msg, ("10.0.0.3", PORT))
            assert recv(servers[other], 0.2) == (None, None), "%s's datagram reached %s" % (client, other)
    finally:
        for s in list(servers.values()) + list(clients.values()):
            s.close()


def test_overlapping_vpcs_are_isolated(lab):
    # the same address in VPC B is another endpoint
    sent, received, out = lab.ping("ep3", "10.0.0.3")
    assert (sent, received) == (3, 3), out
    assert lab.neighbour_mac("ep3", "10.0.0.3") == lab.endpoints["ep4"].mac != lab.endpoints["ep2"].mac
    # an address only VPC A has is unreachable from B, reachable from A
    sent, received, out = lab.ping("ep3", "10.0.0.4", count=1, timeout=1)
    assert received == 0, out
    sent, received, out = lab.ping("ep1", "10.0.0.4")
    assert (sent, received) == (3, 3), out
    # and VPC B's endpoint never learnt a VPC A MAC
    assert lab.neighbour_mac("ep3", "10.0.0.4") is None


def test_a_4000_byte_udp_datagram_crosses_hosts_in_fragments(lab):
    """The endpoint's stack fragments a datagram larger than its MTU; every
    fragment carries the addresses, so every fragment is forwarded, and the
    receiver on another host reassembles the datagram byte for byte."""
    payload = bytes(range(256)) * 15 + b"end-of-datagram!"  # 3856 bytes: three fragments at MTU 1450
    assert len(payload) > 3 * 1200
    server, client = lab.udp("ep2", ("10.0.0.3", PORT + 1)), lab.udp("ep1")
    before = lab.all_counters()
    try:
        client.sendto(payload, ("10.0.0.3", PORT + 1))
        data, peer = recv(server, 5, size=65536)
        assert data == payload, "got %r bytes" % (None if data is None else len(data))
        server.sendto(data, peer)  # and the same way back
        assert recv(client, 5, size=65536)[0] == payload
    finally:
        server.close()
        client.close()
    d = lab.counter_deltas(before)
    assert d["h2"].get("decap", 0) >= 3, d  # at least three fragments delivered on h2
    assert not [h for h in lab.hosts if d[h].get("drop")], d


def test_tcp_with_ip_options_crosses_hosts(lab):
    """A TCP connection whose every packet carries IPv4 options (set on the
    socket: the kernel puts them on each segment) works between hosts."""
    listener = netlink.netns_socket(lab.ns("ep2"), socket.AF_INET, socket.SOCK_STREAM)
    client = netlink.netns_socket(lab.ns("ep1"), socket.AF_INET, socket.SOCK_STREAM)
    before = lab.all_counters()
    try:
        listener.bind(("10.0.0.3", PORT + 2))
        listener.listen(1)
        # NOP, NOP, NOP, end of options: a 24-byte IPv4 header on every segment
        client.setsockopt(socket.IPPROTO_IP, socket.IP_OPTIONS, b"\x01\x01\x01\x00")
        client.settimeout(5)
        listener.settimeout(5)
        client.connect(("10.0.0.3", PORT + 2))
        conn, dummy = listener.accept()
        conn.settimeout(5)
        message = b"options-all-the-way " * 200
        client.sendall(message)
        got = b""
        while len(got) < len(message):
            chunk = conn.recv(65536)
            assert chunk, "connection closed after %d bytes" % len(got)
            got += chunk
        assert got == message
        conn.sendall(b"ack")
        assert client.recv(16) == b"ack"
        conn.close()
    finally:
        client.close()
        listener.close()
    d = lab.counter_deltas(before)
    assert d["h2"].get("decap", 0) >= 3, d
    assert not [h for h in lab.hosts if d[h].get("drop")], d
