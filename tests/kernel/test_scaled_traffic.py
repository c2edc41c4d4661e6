"""The scaled function (bpf/functions/scaled.bpf.c) on real TCP between
namespace hosts: streams through a VIP keep their backend, and never break,
while a backend is added and another drained; new connections reach the
new backend and never the drained one; backends reply from the VIP
themselves (direct server return, the agent letting only them); a sender
learns the VIP's path MTU (the tunnel's less the function's option) from its
own agent.

  VPC A (VNI 1100): 10.0.0.0/24 bounced by h3, which balances
    c1 10.0.0.2 (h1), c2 10.0.0.3 (h2): clients
    b1 10.0.0.11 (h1), b2 10.0.0.12 (h2): backends of vip 10.0.0.100
    b3 10.0.0.13 (h3): added later, on the balancing host itself

Every host runs the scaled function, configured with the VIP (the
balancing host and the backends' hosts need it)."""
import errno
import os
import re
import socket
import subprocess
import threading
import time

import pytest

from ansible_collections.mizar.transit.plugins.module_utils import nsenter
from ansible_collections.mizar.transit.plugins.module_utils.bpf import fnconfig, stages
from ansible_collections.mizar.transit.plugins.module_utils.host import netlink
from ansible_collections.mizar.transit.plugins.module_utils.model import maglev

from .conftest import BPF_OUT, RUN
from .topology import Lab, deltas, poll

A = 1100
VNIS = {"A": A}
VIP = "10.0.0.100"
PORT = 8080
OBJ = os.path.join(BPF_OUT, "functions", "scaled.bpf.o")
STAGE = "on_xdp_scaled_ep"
LB = fnconfig.configurator("scaled")
BACKENDS = {"b1": "10.0.0.11", "b2": "10.0.0.12", "b3": "10.0.0.13"}
MESSAGE = 1000
STREAMS = 8


def config(weights):
    """The function's config for the VIP: weights {backend name: weight}."""
    return {"endpoints": [{"vpc": "A", "ip": VIP, "ring_size": maglev.endpoint_ring_size(list(weights.values())),
                           "backends": [{"ip": BACKENDS[b], "weight": w} for b, w in sorted(weights.items())]}]}


def set_backends(lab, weights):
    """Every host's maps and function config to these backends."""
    lab.scaled_eps["vip"].backends = sorted(weights.items())
    lab.converge()
    for h in lab.hosts:
        LB.converge(os.path.join(lab.loaders[h].pin_dir, "maps"), config(weights), VNIS)


class Server(threading.Thread):
    """A TCP server in a backend's namespace: each connection gets back
    what it sends, prefixed by the backend's name, message by message."""

    def __init__(self, lab, name):
        super().__init__(daemon=True)
        self.name_ = name.encode()
        self.sock = netlink.netns_socket(lab.ns(name), socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("0.0.0.0", PORT))
        self.sock.listen(64)
        self.sock.settimeout(0.5)
        self.stop = False

    def run(self):
        while not self.stop:
            try:
                conn, dummy = self.sock.accept()
            except socket.timeout:
                continue
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    def serve(self, conn):
        with conn:
            conn.settimeout(10)
            try:
                while True:
                    data = _read(conn, MESSAGE)
                    if not data:
                        return
                    conn.sendall(self.name_ + b":" + data)
            except OSError:
                return


def _read(conn, n):
    out = b""
    while len(out) < n:
        chunk = conn.recv(n - len(out))
        if not chunk:
            return out
        out += chunk
    return out


class Stream(threading.Thread):
    """A client's connection to the VIP exchanging messages until stopped:
    the backends that answered and the error that ended it, if any."""

    def __init__(self, lab, client):
        super().__init__(daemon=True)
        self.sock = netlink.netns_socket(lab.ns(client), socket.AF_INET, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect((VIP, PORT))
        self.served_by = set()
        self.exchanges = 0
        self.error = None
        self.stop = False

    def run(self):
        msg = os.urandom(MESSAGE)
        try:
            while not self.stop:
                self.sock.sendall(msg)
                reply = _read(self.sock, MESSAGE + 3)
                name, dummy, data = reply.partition(b":")
                if data != msg:
                    raise AssertionError("reply of %d bytes from %r: not the message" % (len(reply), name))
                self.served_by.add(name.decode())
                self.exchanges += 1
                time.sleep(0.005)
        except Exception as e:
            self.error = repr(e)
        finally:
            self.sock.close()


def who_serves(lab, client, n):
    """The backends n fresh connections from client reach."""
    seen = []
    for dummy in range(n):
        s = netlink.netns_socket(lab.ns(client), socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(5)
        try:
            s.connect((VIP, PORT))
            s.sendall(b"h" * MESSAGE)
            seen.append(_read(s, MESSAGE + 3).partition(b":")[0].decode())
        finally:
            s.close()
    return seen


@pytest.fixture(scope="module")
def lab():
    lab = Lab("%s-lbt" % RUN, BPF_OUT)
    prefix = lab.prefix
    lab.destroy()
    lab.vpc(A, "10.0.0.0/24", bouncers=["h3"])
    addresses = dict(BACKENDS, c1="10.0.0.2", c2="10.0.0.3")
    hosts = {"c1": "h1", "c2": "h2", "b1": "h1", "b2": "h2", "b3": "h3"}
    for name in sorted(hosts):
        lab.endpoint(name, A, addresses[name], hosts[name])
    lab.scaled("vip", A, VIP, [("b1", 1), ("b2", 1), ("b3", 1)])  # every backend's MTU leaves room for the option
    servers = []
    try:
        lab.build()
        for st in [stages.Stages(lab.loaders[h].pin_dir) for h in lab.hosts]:
            st.install(STAGE, OBJ, "scaled_on_xdp_scaled_ep")
        for b in ("b1", "b2"):
            lab.serve(b, VIP)
        set_backends(lab, {"b1": 1, "b2": 1})
        servers = [Server(lab, b) for b in BACKENDS]
        for s in servers:
            s.start()
        yield lab
    finally:
        for s in servers:
            s.stop = True
            s.join()
            s.sock.close()
        errors = lab.destroy()
        assert not errors, errors
        assert not [n for n in nsenter.netns_list() if n.startswith(prefix + "-")]


def _progress(streams, more):
    """Wait until every stream has done `more` exchanges beyond now."""
    want = [s.exchanges + more for s in streams]
    poll(lambda: [s.exchanges for s in streams], lambda got: all(g >= w for g, w in zip(got, want)) or
         any(s.error for s in streams), timeout=20)
    assert [s.error for s in streams] == [None] * len(streams)
    assert all(s.exchanges >= w for s, w in zip(streams, want)), [s.exchanges for s in streams]


def test_streams_keep_their_backend_across_an_add_and_a_drain(lab):
    assert sorted(set(who_serves(lab, "c1", 40))) == ["b1", "b2"]
    streams = [Stream(lab, "c1" if i % 2 else "c2") for i in range(STREAMS)]
    for s in streams:
        s.start()
    try:
        _progress(streams, 20)
        before = [set(s.served_by) for s in streams]
        assert all(len(b) == 1 for b in before), before

        # add b3 (on the balancing host): new connections reach it, the streams stay
        lab.serve("b3", VIP)
        set_backends(lab, {"b1": 1, "b2": 1, "b3": 1})
        _progress(streams, 20)
        assert "b3" in who_serves(lab, "c2", 40)

        # drain b1: no new connection reaches it, its streams go on there
        set_backends(lab, {"b1": 0, "b2": 1, "b3": 1})
        _progress(streams, 20)
        assert "b1" not in who_serves(lab, "c1", 40)
        assert [s.served_by for s in streams] == before
    finally:
        for s in streams:
            s.stop = True
        for s in streams:
            s.join(15)
    assert [s.error for s in streams] == [None] * STREAMS


def test_only_a_backend_may_send_from_the_vip(lab):
    """A reply from the VIP of an endpoint that serves it goes out; the same
    from a client is the agent's spoof drop."""
    sent, received, out = lab.ping("c1", "10.0.0.3")  # c1 knows c2's MAC: the datagram below needs no ARP
    assert (sent, received) == (3, 3), out
    before = lab.counters("h1")
    sock = netlink.netns_socket(lab.ns("c1"), socket.AF_INET, socket.SOCK_DGRAM)
    try:
        netlink.addr_add("lo", "%s/32" % VIP, netns=lab.ns("c1"))
        sock.bind((VIP, 0))
        sock.sendto(b"not mine", ("10.0.0.3", 9))
        after = poll(lambda: lab.counters("h1"), lambda c: c["agent_spoof"] > before["agent_spoof"])
    finally:
        sock.close()
        netlink.addr_del("lo", "%s/32" % VIP, netns=lab.ns("c1"))
    assert after["agent_spoof"] == before["agent_spoof"] + 1


def _sh(ns, *cmd):
    return subprocess.run(["ip", "netns", "exec", ns] + list(cmd), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True, check=False).stdout


EP_MTU = 1500 - 50  # the clients' MTU: the NIC's less the tunnel
VIP_MTU = EP_MTU - 8  # what reaches a VIP: the scaled function's backend option too
IP_MTU_DISCOVER, IP_PMTUDISC_DO, IP_MTU = 10, 2, 14  # linux/in.h


def test_a_sender_learns_the_vips_path_mtu_from_its_agent(lab):
    """A datagram with DF to the VIP that fits the tunnel but not the
    scaled function's option gets "fragmentation needed" (next-hop MTU
    1442) from the client's own agent; the kernel records it, and what it
    sends then reaches a backend and is answered from the VIP."""
    sent, received, out = lab.ping("c1", VIP, count=1)  # ARP, and the path works
    assert received == 1, out
    before = lab.counters("h1")
    res = _sh(lab.ns("c1"), "ping", "-n", "-c", "1", "-W", "2", "-M", "do", "-s", str(EP_MTU - 28), VIP)
    assert re.search(r"From %s icmp_seq=1 Frag needed and DF set \(mtu = %d\)" % (re.escape(VIP), VIP_MTU), res), res
    d = deltas(before, lab.counters("h1"))
    assert d == {"agent_pmtu": 1, "tx": 1}, d
    route = _sh(lab.ns("c1"), "ip", "route", "get", VIP)
    assert re.search(r"\bmtu %d\b" % VIP_MTU, route), "the kernel recorded the path MTU: %s" % route
    res = _sh(lab.ns("c1"), "ping", "-n", "-c", "2", "-i", "0.2", "-W", "2", "-M", "do", "-s", str(VIP_MTU - 28), VIP)
    assert "2 packets transmitted, 2 received" in res, res


def test_a_udp_sender_with_df_learns_the_vips_path_mtu(lab):
    """The same for UDP (from c2, whose kernel knows no path MTU yet): the
    socket's IP_MTU drops to 1442 after one datagram of the endpoint's MTU."""
    sock = netlink.netns_socket(lab.ns("c2"), socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO)
        sock.connect((VIP, 9))
        assert sock.getsockopt(socket.IPPROTO_IP, IP_MTU) == EP_MTU
        before = lab.counters("h2")
        sock.send(b"u" * (EP_MTU - 28))

        def mtu():
            return sock.getsockopt(socket.IPPROTO_IP, IP_MTU)
        assert poll(mtu, lambda m: m == VIP_MTU) == VIP_MTU
        assert deltas(before, lab.counters("h2")) == {"agent_pmtu": 1, "tx": 1}
        # the ICMP error is also reported to the connected socket once: read it, then the kernel
        # refuses a datagram of the old size itself and sends one of the new
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) in (0, errno.EMSGSIZE)
        with pytest.raises(OSError) as err:
            sock.send(b"u" * (EP_MTU - 28))
        assert err.value.errno == errno.EMSGSIZE
        assert sock.send(b"u" * (VIP_MTU - 28)) == VIP_MTU - 28
    finally:
        sock.close()
