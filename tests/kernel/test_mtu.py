"""MTU on the real datapath: hosts whose substrate NICs have MTU 1400,
endpoints sized from it (1350; the NIC's 1400 for a bypass-decap endpoint),
full-size packets crossing, and the agent's path MTU answer to a packet
that cannot fit.

  VPC 1000 (bouncer h3):  ep1 10.0.0.2 on h1, ep2 10.0.0.3 on h2,
                          byp 10.0.0.4 on h2 (bypass_decap),
                          big 10.0.0.5 on h1, its MTU raised to the NIC's
                          (an endpoint that does not know the tunnel)
                          ep6 10.0.0.6 on h2
"""
import re
import select
import socket
import subprocess
import time

import pytest

from ansible_collections.mizar.transit.plugins.module_utils import nsenter
from ansible_collections.mizar.transit.plugins.module_utils.bpf import abi

from ansible_collections.mizar.transit.plugins.module_utils.host import netlink

from .conftest import BPF_OUT, RUN
from .topology import Lab, deltas, poll

VNI = 1000
NIC = 1400
EP = NIC - 50
PORT = 5556
IP_MTU_DISCOVER, IP_PMTUDISC_DONT = 10, 0  # linux/in.h


@pytest.fixture(scope="module")
def lab():
    prefix = "%s-mtu" % RUN
    lab = Lab(prefix, BPF_OUT, nic_mtu=NIC)
    lab.destroy()
    lab.vpc(VNI, bouncers=["h3"])
    lab.endpoint("ep1", VNI, "10.0.0.2", "h1")
    lab.endpoint("ep2", VNI, "10.0.0.3", "h2")
    lab.endpoint("byp", VNI, "10.0.0.4", "h2", bypass_decap=True)
    lab.endpoint("big", VNI, "10.0.0.5", "h1")
    lab.endpoint("ep6", VNI, "10.0.0.6", "h2")
    try:
        lab.build()
        big = lab.endpoints["big"]
        netlink.link_set("eth0", netns=lab.ns("big"), mtu=NIC)
        netlink.link_set(big.host_ifname, netns=lab.ns("h1"), mtu=NIC)
        yield lab
    finally:
        errors = lab.destroy()
        assert not errors, errors


def _sh(ns, *cmd):
    return subprocess.run(["ip", "netns", "exec", ns] + list(cmd), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True, check=False).stdout


def test_endpoints_and_if_cfg_follow_the_nic_mtu(lab):
    for h in lab.hosts:
        assert netlink.link("eth0", lab.ns(h))["mtu"] == NIC
        with lab.loaders[h].map(abi.IF_CFG_MAP) as m:
            assert abi.decode_if_cfg(m.lookup(bytes(4)))["mtu"] == NIC, h
    for name, want in (("ep1", EP), ("ep2", EP), ("byp", NIC)):
        ep = lab.endpoints[name]
        assert netlink.link("eth0", lab.ns(name))["mtu"] == want, name
        assert netlink.link(ep.host_ifname, lab.ns(ep.host))["mtu"] == want, name


def test_a_full_size_packet_crosses(lab):
    sent, received, out = lab.ping("ep1", "10.0.0.3")  # ARP first
    assert received == sent, out
    res = _sh(lab.ns("ep1"), "ping", "-n", "-c", "2", "-i", "0.2", "-W", "2", "-M", "do", "-s", str(EP - 28),
              "10.0.0.3")
    assert "2 packets transmitted, 2 received" in res, res


def _capture(lab, name):
    s = nsenter.run_in_netns(lab.ns(name), socket.socket, socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
    s.bind(("eth0", 0))
    return s


def _frames(sock, marker, seconds=3):
    """Frames carrying marker that reach sock within seconds."""
    got, end = [], time.time() + seconds
    while time.time() < end:
        r, dummy, dummy = select.select([sock], [], [], 0.2)
        if r:
            data = sock.recv(65536)
            if marker in data:
                got.append(data)
        elif got:
            break
    return got


def test_a_bypass_endpoint_receives_full_size_tunnel_frames(lab):
    sent, received, out = lab.ping("ep1", "10.0.0.4", count=1, timeout=1)  # ARP (the bouncer answers it)
    assert lab.neighbour_mac("ep1", "10.0.0.4") == lab.endpoints["byp"].mac, out
    cap = _capture(lab, "byp")
    tx = netlink.netns_socket(lab.ns("ep1"), socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for total in (EP, EP - 1):  # inner IPv4 of the endpoint's full MTU, and one byte less
            marker = b"mtu-%d-" % total
            tx.sendto(marker + b"x" * (total - 28 - len(marker)), ("10.0.0.4", PORT))
            frames = _frames(cap, marker)
            # the whole tunnel frame: for the endpoint's full MTU, outer IPv4 of the NIC's full MTU
            assert [len(f) for f in frames] == [14 + total + 50], "inner IPv4 of %d bytes" % total
            f = frames[0]
            assert f[12:14] == b"\x08\x00" and f[23] == 17 and f[36:38] == (6081).to_bytes(2, "big")
    finally:
        cap.close()
        tx.close()


def test_df_too_big_gets_fragmentation_needed(lab):
    sent, received, out = lab.ping("big", "10.0.0.3", count=1)  # ARP, and the path works
    assert received == 1, out
    before = lab.counters("h1")
    res = _sh(lab.ns("big"), "ping", "-n", "-c", "1", "-W", "2", "-M", "do", "-s", str(EP - 28 + 1), "10.0.0.3")
    assert re.search(r"From 10\.0\.0\.3 icmp_seq=1 Frag needed and DF set \(mtu = %d\)" % EP, res), res
    d = deltas(before, lab.counters("h1"))
    assert d == {"agent_pmtu": 1, "tx": 1}, d
    route = _sh(lab.ns("big"), "ip", "route", "get", "10.0.0.3")
    assert re.search(r"\bmtu %d\b" % EP, route), "the kernel recorded the path MTU: %s" % route
    # and now it fits: the endpoint itself sizes what it sends
    res = _sh(lab.ns("big"), "ping", "-n", "-c", "2", "-i", "0.2", "-W", "2", "-M", "do", "-s", str(EP - 28),
              "10.0.0.3")
    assert "2 packets transmitted, 2 received" in res, res


def test_too_big_without_df_is_dropped_and_counted(lab):
    # to ep6: no path MTU to 10.0.0.6 is known in big yet, so the kernel sends the datagram whole
    rx = netlink.netns_socket(lab.ns("ep6"), socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("10.0.0.6", PORT))
    tx = netlink.netns_socket(lab.ns("big"), socket.AF_INET, socket.SOCK_DGRAM)
    tx.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DONT)
    try:
        tx.sendto(b"small", ("10.0.0.6", PORT))  # the path works
        r, dummy, dummy = select.select([rx], [], [], 3)
        assert r and rx.recv(65536) == b"small"
        before = lab.counters("h1")
        tx.sendto(b"b" * (NIC - 28 - 8), ("10.0.0.6", PORT))  # IPv4 total 1392 > 1350, no DF
        d = poll(lambda: deltas(before, lab.counters("h1")), lambda moved: moved.get("agent_too_big"))
        assert d == {"drop": 1, "agent_too_big": 1}, d
        r, dummy, dummy = select.select([rx], [], [], 0.5)
        assert not r, "an oversize datagram got through"
    finally:
        rx.close()
        tx.close()


def test_endpoint_mtu_derivation_reads_the_nic(lab):
    """What mizar.transit.endpoint derives, against the lab host's real NIC."""
    from ansible_collections.mizar.transit.plugins.module_utils.ops import endpoint
    spec = endpoint.EndpointSpec("vpc/net/x", "mzx", "/sys/fs/bpf/none", netns="x", ip="10.0.0.9", prefixlen=24,
                                 mac="02:00:00:00:00:09", substrate_interface="eth0")
    nic = nsenter.run_in_netns(lab.ns("h1"), endpoint.nic_mtu, spec)
    assert (nic, spec.resolve_mtu(nic)) == (NIC, EP)
