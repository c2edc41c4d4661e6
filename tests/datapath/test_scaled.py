"""The scaled function at ON_XDP_SCALED_EP, through the real transit program
and agent: byte-exact outputs for a new flow and an established one, at the
balancing host (to a remote backend with the option, to a local one
decapsulated) and at the backend's host (the option delivered), forged
options and malformed packets dropped by named reasons; then many flows
through the real program: the share of each backend against its weight,
and the flows moved when a backend is added, removed or drained, against
the Maglev model.

Each packet is its own BPF_PROG_TEST_RUN (with repeat, the kernel would run
the program again on the packet it already rewrote)."""
import os
import socket
import struct
from collections import Counter

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

import fixtures as F
import packets as P
from harness import BPF_OUT, assert_codec_matches_btf
from ansible_collections.mizar.transit.plugins.module_utils.bpf import abi, fnconfig, libbpf
from ansible_collections.mizar.transit.plugins.module_utils.model import capacity, maglev

VNIS = {"blue": 100, "red": 200}
LB = fnconfig.configurator("scaled")
OBJ = os.path.join(BPF_OUT, "functions", "scaled.bpf.o")
STAGE = "on_xdp_scaled_ep"
VIP = "10.0.0.9"
VIP_MAC = F.ep_mac(100, 9)
OPT_CLASS = 0xfff3

# b balances; h1 hosts the backend 10.0.0.5 (and 10.0.0.4, no backend), and holds the VIP to deliver
WORLD_H1 = dict(F.WORLD_H1, endpoints=F.WORLD_H1["endpoints"] + [
    F.ep(100, 9, type="scaled", backends=["10.0.0.5", "10.0.0.6", "10.0.0.7"])])
# b with more remote backends, on four hosts, for the distribution
WORLD_MANY = dict(F.WORLD_B, endpoints=F.WORLD_B["endpoints"] + [
    F.ep(100, 20 + i, host_ip=F.ip(h)) for i, h in enumerate(("h1", "h2", "h4", "h5", "h6", "d"))])


def config(*backends, vip=VIP):
    """One scaled endpoint of VPC blue: backends as (last byte, weight)."""
    weights = [w for dummy, w in backends]
    return {"endpoints": [{"vpc": "blue", "ip": vip, "ring_size": maglev.endpoint_ring_size(weights),
                           "backends": [{"ip": "10.0.0.%d" % b, "weight": w} for b, w in backends]}]}


THREE = config((5, 1), (6, 1), (7, 1))  # h1, h2, and 7 hosted on b


@pytest.fixture(scope="module")
def lb(dp):
    obj = libbpf.BpfObject(OBJ, pin_root=dp.pin_dir).load()
    prog = obj.program("scaled_on_xdp_scaled_ep")
    dp.set_stage(STAGE, prog)
    yield prog
    dp.set_stage(STAGE, None)
    LB.converge(dp.pin_dir, {"endpoints": []}, VNIS)
    obj.close()


def forget_flows(dp):
    with libbpf.Map.from_pin(os.path.join(dp.pin_dir, "mzr_lb_conns")) as conns:
        for k in conns.keys():
            conns.delete(k)


def flows(dp):
    with libbpf.Map.from_pin(os.path.join(dp.pin_dir, "mzr_lb_conns")) as conns:
        return dict(conns.items())


def setup(dp, cfg, world=None):
    dp.load_world(world or F.WORLD_B)
    LB.converge(dp.pin_dir, cfg, VNIS)
    forget_flows(dp)


def run(dp, program, packet, ingress=0):
    """(verdict, output, core counter deltas, function counter deltas)."""
    before, lb_before = dp.counters(), LB.stats(dp.pin_dir)
    r = dp.run(program, packet, ingress)
    after, lb_after = dp.counters(), LB.stats(dp.pin_dir)
    core = dict((k, after[k] - before[k]) for k in after if after[k] != before[k])
    fn = dict((k, lb_after[k] - lb_before[k]) for k in lb_after if lb_after[k] != lb_before[k])
    return r.retval, r.data, core, fn


def client_frame(sport, src=4, proto="udp", size=None, tos=0):
    payload = b"scaled-fixture" if size is None else b"x" * (size - 28)
    l4 = UDP(sport=sport, dport=80) if proto == "udp" else TCP(sport=sport, dport=80, flags="S")
    return bytes(Ether(src=F.ep_mac(100, src), dst=VIP_MAC) / IP(src="10.0.0.%d" % src, dst=VIP, tos=tos) / l4
                 / Raw(payload))


def backend_of(cfg, frame):
    """The backend the ring gives a client frame's flow (the model's answer)."""
    ep = cfg["endpoints"][0]
    ring = fnconfig.lb_ring([(b["ip"], b["weight"]) for b in ep["backends"]], ep["ring_size"])
    src, dst, proto = socket.inet_ntoa(frame[26:30]), socket.inet_ntoa(frame[30:34]), frame[23]
    return abi.u32_to_ip(ring[fnconfig.lb_slot(ep["ring_size"], 100, src, dst, proto, frame[34:38])])


def sport_to(cfg, backend, src=4, proto="udp"):
    """A client source port whose flow the ring gives backend."""
    for sport in range(20000, 30000):
        if backend_of(cfg, client_frame(sport, src, proto)) == backend:
            return sport
    raise AssertionError("no flow to %s" % backend)


def option(backend):
    return P.geneve_option(OPT_CLASS, 0x01, socket.inet_aton(backend))


def to_backend_host(frame, backend, host, via="b", sport=50000, tos=0):
    """What the balancer sends the backend's host: a fresh outer header, our
    option, the inner frame addressed to the backend's MAC."""
    inner = P.with_dst_mac(frame, F.ep_mac(100, int(backend.rsplit(".", 1)[1])))
    return P.outer(F.mac(via), F.mac(host), F.ip(via), F.ip(host), P.geneve_header(100, option(backend)) + inner,
                   ttl=64, sport=sport, ip_id=0, flags="DF", tos=tos)


TX, REDIRECT, DROP = P.XDP_TX, P.XDP_REDIRECT, P.XDP_DROP


# ------------------------------------------------------------------ byte-exact, at the balancing host


def test_new_flow_to_a_remote_backend_goes_to_its_host_with_the_option(dp, lb):
    setup(dp, THREE)
    frame = client_frame(sport_to(THREE, "10.0.0.5"))
    got = run(dp, "transit", F.enc(frame, tos=0x02))
    assert got == (TX, to_backend_host(frame, "10.0.0.5", "h1", tos=0x02), {"scaled": 1, "tx": 1},
                   {"new": 1, "remote": 1})
    assert len(flows(dp)) == 1


def test_an_established_flow_keeps_its_backend_and_writes_no_map(dp, lb):
    setup(dp, THREE)
    frame = client_frame(sport_to(THREE, "10.0.0.6"))
    want = to_backend_host(frame, "10.0.0.6", "h2")
    assert run(dp, "transit", F.enc(frame))[:2] == (TX, want)
    table = flows(dp)
    for dummy in range(3):
        assert run(dp, "transit", F.enc(frame)) == (TX, want, {"scaled": 1, "tx": 1},
                                                    {"established": 1, "remote": 1})
    assert flows(dp) == table


def test_new_flow_to_a_backend_hosted_here_is_decapsulated_to_it(dp, lb):
    setup(dp, THREE)
    frame = client_frame(sport_to(THREE, "10.0.0.7"))
    assert run(dp, "transit", F.enc(frame)) == (REDIRECT, P.with_dst_mac(frame, F.ep_mac(100, 7)),
                                                {"scaled": 1, "decap": 1, "redirect": 1}, {"new": 1, "local": 1})


def test_the_agent_of_a_client_on_the_balancer_encapsulates_with_the_option(dp, lb):
    """10.0.0.7 sends to the VIP from b, its network's bouncer: the agent
    offers its plain frame to the stage."""
    setup(dp, THREE)
    frame = client_frame(sport_to(THREE, "10.0.0.5", src=7), src=7, tos=0x28)
    sport, dummy = F.agent_flow(frame)
    assert run(dp, "agent", frame, F.LO) == (REDIRECT, to_backend_host(frame, "10.0.0.5", "h1", sport=sport, tos=0x28),
                                             {"scaled": 1, "redirect": 1}, {"new": 1, "remote": 1})
    frame = client_frame(sport_to(THREE, "10.0.0.7", src=7), src=7)
    assert run(dp, "agent", frame, F.LO) == (REDIRECT, P.with_dst_mac(frame, F.ep_mac(100, 7)),
                                             {"scaled": 1, "agent_local": 1, "redirect": 1}, {"new": 1, "local": 1})


def test_tcp_flows_balance_as_udp_ones(dp, lb):
    setup(dp, THREE)
    frame = client_frame(sport_to(THREE, "10.0.0.6", proto="tcp"), proto="tcp")
    assert run(dp, "transit", F.enc(frame))[:2] == (TX, to_backend_host(frame, "10.0.0.6", "h2"))


# ------------------------------------------------------------------ at the backend's host


def test_the_option_is_delivered_to_its_backend_here(dp, lb):
    setup(dp, THREE, WORLD_H1)
    frame = P.with_dst_mac(client_frame(31000), F.ep_mac(100, 5))
    got = run(dp, "transit", to_backend_host(frame, "10.0.0.5", "h1"))
    assert got == (REDIRECT, frame, {"scaled": 1, "decap": 1, "redirect": 1}, {"at_backend": 1})
    assert flows(dp) == {}  # the balancer remembers the flow, not the backend's host


@pytest.mark.parametrize("named,reason", [
    ("10.0.0.4", "forged"),    # hosted here, but no backend of the VIP
    ("10.0.0.77", "forged"),   # nobody
    ("10.0.0.6", "not_here"),  # a backend of the VIP, on h2
])
def test_an_option_naming_no_backend_here_is_dropped(dp, lb, named, reason):
    setup(dp, THREE, WORLD_H1)
    frame = client_frame(31000)
    assert run(dp, "transit", to_backend_host(frame, named, "h1")) == (DROP, to_backend_host(frame, named, "h1"),
                                                                       {"scaled": 1}, {reason: 1})


def test_an_option_is_never_balanced_again(dp, lb):
    """At the balancer itself an option naming a remote backend is dropped:
    an optioned packet is delivered or dropped, never sent on."""
    setup(dp, THREE)
    pkt = P.outer(F.mac("h1"), F.mac("b"), F.ip("h1"), F.ip("b"),
                  P.geneve_header(100, option("10.0.0.5")) + client_frame(31000))
    assert run(dp, "transit", pkt)[::3] == (DROP, {"not_here": 1})


def test_other_options_before_ours_are_walked(dp, lb):
    setup(dp, THREE, WORLD_H1)
    frame = P.with_dst_mac(client_frame(31000), F.ep_mac(100, 5))
    opts = P.geneve_option(0x0102, 0x05, b"\1\2\3\4\5\6\7\x08") + option("10.0.0.5")
    pkt = P.outer(F.mac("b"), F.mac("h1"), F.ip("b"), F.ip("h1"), P.geneve_header(100, opts) + frame)
    assert run(dp, "transit", pkt)[:2] == (REDIRECT, frame)


# ------------------------------------------------------------------ replies: direct server return


def _reply(src, dst="10.0.0.6"):
    """A backend's reply, from 10.0.0.5's veth (the agent on lo at h1)."""
    return bytes(Ether(src=F.ep_mac(100, 5), dst=F.GW_MAC) / IP(src=src, dst=dst) / UDP(sport=80, dport=31000)
                 / Raw(b"reply"))


@pytest.mark.parametrize("backends,src,allowed", [
    (["10.0.0.5", "10.0.0.6"], VIP, True),      # a backend of the VIP, from the VIP
    (["10.0.0.6", "10.0.0.7"], VIP, False),     # the VIP of a scaled endpoint it does not serve
    (["10.0.0.5", "10.0.0.6"], "10.0.0.4", False),  # another endpoint's address
    (["10.0.0.5", "10.0.0.6"], "10.0.0.77", False),  # nobody's
])
def test_only_a_backend_of_the_vip_may_send_from_it(dp, lb, backends, src, allowed):
    world = dict(F.WORLD_H1, endpoints=F.WORLD_H1["endpoints"] + [F.ep(100, 9, type="scaled", backends=backends)])
    dp.load_world(world)
    frame = _reply(src)
    got = run(dp, "agent", frame, F.LO)
    if allowed:  # on to the client's bouncer, as any packet of the endpoint
        assert got[:3] == (REDIRECT, F.agent_encap(frame), {"redirect": 1, "agent_encap": 1})
    else:
        assert got[:3] == (DROP, frame, {"drop": 1, "agent_spoof": 1})


def many(at=None):
    """MAX_BACKENDS backends (10.0.16.0 on), the agent's endpoint 10.0.0.5 at
    index at (None: not among them)."""
    ips = [socket.inet_ntoa(struct.pack(">I", 0x0A001000 + i)) for i in range(capacity.MAX_BACKENDS)]
    if at is not None:
        ips[at] = "10.0.0.5"
    return ips


@pytest.mark.parametrize("at,allowed", [(3999, True), (None, False)], ids=["backend-4000", "not-a-member"])
def test_backend_4000_of_4096_may_send_from_the_vip(dp, lb, at, allowed):
    """The agent's check is one lookup in mzr_members, whatever the number
    of backends: the 4,000th of 4,096 passes, a non-member is a spoof."""
    world = dict(F.WORLD_H1, endpoints=F.WORLD_H1["endpoints"] + [F.ep(100, 9, type="scaled", backends=many(at))])
    dp.load_world(world)
    frame = _reply(VIP)
    got = run(dp, "agent", frame, F.LO)
    if allowed:
        assert got[:3] == (REDIRECT, F.agent_encap(frame), {"redirect": 1, "agent_encap": 1})
    else:
        assert got[:3] == (DROP, frame, {"drop": 1, "agent_spoof": 1})


# ------------------------------------------------------------------ malformed and refused


def test_arp_other_than_a_request_is_no_flow(dp, lb):
    setup(dp, THREE)
    reply = P.inner_arp_reply(F.ep_mac(100, 4), "10.0.0.4", VIP_MAC, VIP)
    assert run(dp, "transit", F.enc(reply))[::3] == (DROP, {"malformed": 1})


@pytest.mark.parametrize("cut", [14 + 20 + 8 + 8 + 10, 14 + 20 + 8 + 8 + 14 + 12])
def test_truncated_packets_never_reach_the_function(dp, lb, cut):
    """Cut in the inner Ethernet or IPv4 header: the transit program drops them
    by its own reasons before the stage."""
    setup(dp, THREE)
    pkt = P.with_outer_lengths(F.enc(client_frame(31000))[:cut])
    verdict, out, core, fn = run(dp, "transit", pkt)
    assert (verdict, fn, core) == (DROP, {}, {"drop": 1, "inner_trunc": 1})


def test_a_vip_the_function_does_not_hold_is_dropped(dp, lb):
    setup(dp, {"endpoints": []})
    assert run(dp, "transit", F.enc(client_frame(31000)))[::3] == (DROP, {"no_vip": 1})


def test_every_backend_drained_takes_no_new_flow_but_keeps_the_old(dp, lb):
    setup(dp, THREE)
    frame = client_frame(sport_to(THREE, "10.0.0.5"))
    assert run(dp, "transit", F.enc(frame))[0] == TX
    LB.converge(dp.pin_dir, config((5, 0), (6, 0), (7, 0)), VNIS)
    assert run(dp, "transit", F.enc(frame))[::3] == (TX, {"established": 1, "remote": 1})
    assert run(dp, "transit", F.enc(client_frame(sport_to(THREE, "10.0.0.5") + 1)))[::3] == (DROP, {"no_backend": 1})


def test_too_big_with_the_option_is_dropped(dp, lb):
    """b's NIC is 1500: an inner packet of 1450 bytes fits the tunnel, not
    the tunnel and the option."""
    setup(dp, THREE)
    for sport in range(20000, 30000):
        frame = client_frame(sport, size=1450)
        if backend_of(THREE, frame) == "10.0.0.5":
            break
    assert run(dp, "transit", F.enc(frame))[::3] == (DROP, {"new": 1, "too_big": 1})


# ------------------------------------------------------------------ many flows


def _template(sport):
    return F.enc(client_frame(sport))


SPORT_AT = len(F.enc(b"")) + 14 + 20  # the inner UDP source port in the tunnel packet


def balance(dp, ports):
    """The backend of each flow (by its source port), as the real program
    picks it: from the option of what it sends, 0.0.0.0 when dropped."""
    base = bytearray(_template(1))
    out = {}
    for sport in ports:
        base[SPORT_AT:SPORT_AT + 2] = struct.pack("!H", sport)
        r = dp.run("transit", bytes(base))
        out[sport] = socket.inet_ntoa(r.data[54:58]) if r.retval == TX else "0.0.0.0"
    return out


MANY = [(20 + i, w) for i, w in enumerate((1, 1, 2, 4, 1, 1))]
PORTS = range(1024, 1024 + 12000)


def _ring_moved(before, after):
    """The model's share of slots whose backend changed between two configs."""
    rings = []
    for cfg in (before, after):
        ep = cfg["endpoints"][0]
        rings.append(fnconfig.lb_ring([(b["ip"], b["weight"]) for b in ep["backends"]], ep["ring_size"]))
    return sum(1 for a, b in zip(*rings) if a != b) / float(len(rings[0]))


def test_shares_follow_the_weights(dp, lb):
    setup(dp, config(*MANY), WORLD_MANY)
    got = balance(dp, PORTS)
    total = float(sum(w for dummy, w in MANY))
    for last, weight in MANY:
        share = sum(1 for b in got.values() if b == "10.0.0.%d" % last) / float(len(PORTS))
        assert abs(share - weight / total) < 0.02, (last, share, weight / total)


THOUSAND = ["10.0.%d.%d" % (4 + i // 250, 1 + i % 250) for i in range(1000)]


def test_a_thousand_backends_share_the_flows_as_the_ring_says(dp, lb):
    """1,000 backends on five hosts: each of 12,000 flows goes to the backend
    the Maglev model's ring gives it, and the flows spread over all of them."""
    hosts = ("h1", "h2", "h4", "h5", "h6")
    world = dict(F.WORLD_B, endpoints=F.WORLD_B["endpoints"] + [
        dict(F.ep(100, 4, host_ip=F.ip(hosts[i % len(hosts)])), ip=ip) for i, ip in enumerate(THOUSAND)])
    cfg = {"endpoints": [{"vpc": "blue", "ip": VIP, "ring_size": maglev.endpoint_ring_size([1] * len(THOUSAND)),
                          "backends": [{"ip": ip, "weight": 1} for ip in THOUSAND]}]}
    setup(dp, cfg, world)
    got = balance(dp, PORTS)
    ep = cfg["endpoints"][0]
    ring = fnconfig.lb_ring([(b["ip"], b["weight"]) for b in ep["backends"]], ep["ring_size"])
    frame = bytearray(client_frame(1))
    for sport in PORTS:
        frame[34:36] = struct.pack("!H", sport)
        src, dst = socket.inet_ntoa(bytes(frame[26:30])), socket.inet_ntoa(bytes(frame[30:34]))
        want = abi.u32_to_ip(ring[fnconfig.lb_slot(ep["ring_size"], 100, src, dst, frame[23], bytes(frame[34:38]))])
        assert got[sport] == want, sport
    counts = sorted(Counter(got.values()).values())
    assert len(counts) >= 990 and counts[-1] <= 40, (len(counts), counts[-5:])  # 12 flows each on average


@pytest.mark.parametrize("change", ["add", "remove", "drain"])
def test_flows_moved_by_a_change_as_the_model_says_and_established_ones_stay(dp, lb, change):
    # 5 and 6 backends share a ring size (8191): the model's bound holds
    # within a size (docs/inventory.md says what a new size does)
    before = config(*MANY[:5]) if change == "add" else config(*MANY)
    after = {"add": config(*MANY), "remove": config(*(MANY[:4] + MANY[5:])),
             "drain": config(*(MANY[:4] + [(MANY[4][0], 0)] + MANY[5:]))}[change]
    setup(dp, before, WORLD_MANY)
    first = balance(dp, PORTS)
    # established flows: the connection table keeps every one where it was,
    # but those of a removed backend, which move
    LB.converge(dp.pin_dir, after, VNIS)
    kept = balance(dp, PORTS)
    gone = "10.0.0.%d" % MANY[4][0] if change == "remove" else None
    assert [p for p in PORTS if kept[p] != first[p] and first[p] != gone] == []
    if gone:
        assert all(kept[p] != gone for p in PORTS)
    # new flows (the table forgotten): the ring's changes, as the model computes them
    forget_flows(dp)
    fresh = balance(dp, PORTS)
    moved = sum(1 for p in PORTS if fresh[p] != first[p]) / float(len(PORTS))
    model = _ring_moved(before, after)
    assert abs(moved - model) < 0.02, (moved, model)
    # Maglev's bound: what must move (the share added, removed or drained), and about 1% more
    must = 1 / 10.0  # the added, removed or drained backend's weight, of 10
    assert moved <= must + 0.02, (moved, must)


# ------------------------------------------------------------------ the control plane


def test_converge_is_idempotent_and_check_mode_writes_nothing(dp, lb):
    setup(dp, {"endpoints": []})
    changed, before, after = LB.converge(dp.pin_dir, THREE, VNIS, check_mode=True)
    assert changed and before == {"endpoints": []} and LB.current(dp.pin_dir) == b""
    assert after == {"endpoints": [{"vpc": "blue", "ip": VIP, "ring_size": 4093, "backends": [
        {"ip": "10.0.0.5", "weight": 1}, {"ip": "10.0.0.6", "weight": 1}, {"ip": "10.0.0.7", "weight": 1}]}]}
    assert LB.converge(dp.pin_dir, THREE, VNIS)[0]
    assert LB.current(dp.pin_dir) == LB.encode(THREE, VNIS)
    assert LB.converge(dp.pin_dir, THREE, VNIS) == (False, after, after)


def test_a_changed_ring_goes_to_free_chunks_and_the_old_ones_are_reused(dp, lb):
    setup(dp, {"endpoints": []})
    LB.converge(dp.pin_dir, THREE, VNIS)
    with libbpf.Map.from_pin(os.path.join(dp.pin_dir, "mzr_lb_vips")) as vips:
        first = fnconfig.LbVip.from_buffer_copy(list(vips.items())[0][1])
        LB.converge(dp.pin_dir, config((5, 1), (6, 2), (7, 1)), VNIS)
        second = fnconfig.LbVip.from_buffer_copy(list(vips.items())[0][1])
        LB.converge(dp.pin_dir, THREE, VNIS)
        third = fnconfig.LbVip.from_buffer_copy(list(vips.items())[0][1])
    assert (first.ring, second.ring, third.ring) == (0, 16, 0)  # 4093 slots: 16 chunks


@pytest.mark.parametrize("codec", sorted(fnconfig.LB_C_NAMES, key=fnconfig.LB_C_NAMES.get), ids=fnconfig.LB_C_NAMES.get)
def test_codec_matches_btf(codec):
    assert_codec_matches_btf(OBJ, fnconfig.LB_C_NAMES[codec], codec)
