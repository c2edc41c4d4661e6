"""The datapath fixture table: for each row, the map state ("world"), the
program, the input packet, the expected verdict, the exact expected output
bytes and the exact counters that must move. The same table drives the
functional tests (test_fixtures.py) and the benchmark (bench/datapath.py)."""
import collections
import socket

from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Raw

import packets as P
from packets import XDP_DROP, XDP_PASS, XDP_REDIRECT, XDP_TX
from ansible_collections.mizar.transit.plugins.module_utils.bpf import abi

VERDICTS = {0: "XDP_ABORTED", 1: "XDP_DROP", 2: "XDP_PASS", 3: "XDP_TX", 4: "XDP_REDIRECT"}

# Substrate hosts: name -> (ip, mac)
HOSTS = {
    "h1": ("192.168.0.1", "02:00:00:00:00:01"),
    "h2": ("192.168.0.2", "02:00:00:00:00:02"),
    "b": ("192.168.0.3", "02:00:00:00:00:03"),
    "h4": ("192.168.0.4", "02:00:00:00:00:04"),
    "h5": ("192.168.0.5", "02:00:00:00:00:05"),
    "h6": ("192.168.0.6", "02:00:00:00:00:06"),
    "d": ("192.168.0.9", "02:00:00:00:00:09"),
}


def ip(h):
    return HOSTS[h][0]


def mac(h):
    return HOSTS[h][1]


def ep_mac(vni, last):
    return "02:ee:%02x:00:00:%02x" % (vni % 256, last)


GW_MAC = "02:99:00:00:00:01"
LO = 1  # ifindex of lo: test runs of the agent need an existing ingress interface


def substrate(*names):
    return [{"ip": ip(n), "mac": mac(n)} for n in names]


# Trusted tunnel sources: every fixture host for any VNI, and a tunnel peer
# (a Linux geneve device) for VNI 100 only.
PEER = ("192.168.0.77", "02:00:00:00:00:77")
SOURCES = [{"ip": a, "vni": 0} for a, dummy in HOSTS.values()] + [{"ip": PEER[0], "vni": 100}]


def ep(vni, last, **kw):
    e = {"vni": vni, "ip": "10.0.0.%d" % last, "type": "simple", "host_ip": None, "ifindex": 0,
         "mac": ep_mac(vni, last), "bypass_decap": False, "backends": []}
    e.update(kw)
    return e


# The bouncer host "b": bouncer of VPC 100's 10.0.0.0/24 (hosting two of its
# endpoints), endpoint host, divider of VPC 300, and it knows VPC 200 which
# reuses 10.0.0.0/24.
WORLD_B = {
    "if_cfg": {"ip": ip("b"), "mac": mac("b"), "ifindex": 2},
    "endpoints": [
        ep(100, 1, type="gateway", mac=GW_MAC),
        ep(100, 5, host_ip=ip("h1")),
        ep(100, 6, host_ip=ip("h2")),
        ep(100, 7, ifindex=7),
        ep(100, 8, ifindex=8, bypass_decap=True),
        ep(100, 9, type="scaled", backends=["10.0.0.5", "10.0.0.6"]),
        ep(200, 5, host_ip=ip("h6")),
    ],
    "networks": [
        {"vni": 100, "cidr": "10.0.0.0/24", "bouncers": [], "local_bouncer": True},
        {"vni": 300, "cidr": "10.3.0.0/24", "bouncers": [ip("h4"), ip("h5")], "local_bouncer": False},
        {"vni": 300, "cidr": "10.3.1.0/24", "bouncers": [ip("h1")], "local_bouncer": False},
    ],
    "vpcs": [
        {"vni": 100, "dividers": [ip("d")], "local_divider": False},
        {"vni": 200, "dividers": [ip("d")], "local_divider": False},
        {"vni": 300, "dividers": [ip("b")], "local_divider": True},
    ],
    "substrate": substrate("h1", "h2", "h4", "h5", "h6", "d"),
    "agents": [{"ifindex": LO, "vni": 100, "ip": "10.0.0.7", "mac": ep_mac(100, 7), "bouncers": [ip("b")]}],
    "sources": SOURCES,
}

# An endpoint host "h1": hosts 10.0.0.5 (agent on lo), 10.0.0.4 and a bypass
# endpoint 10.0.0.10; its network's bouncer is "b".
WORLD_H1 = {
    "if_cfg": {"ip": ip("h1"), "mac": mac("h1"), "ifindex": 2, "mtu": 1500},
    "endpoints": [ep(100, 5, ifindex=5), ep(100, 4, ifindex=9), ep(100, 10, ifindex=10, bypass_decap=True)],
    "networks": [],
    "vpcs": [],
    "substrate": substrate("b"),
    "agents": [{"ifindex": LO, "vni": 100, "ip": "10.0.0.5", "mac": ep_mac(100, 5), "bouncers": [ip("b")]}],
    "sources": SOURCES,
}

# Nothing but the interface: an agent here has no configuration.
WORLD_BARE = {"if_cfg": {"ip": ip("h2"), "mac": mac("h2"), "ifindex": 2}, "endpoints": [], "networks": [],
              "vpcs": [], "substrate": [], "agents": [], "sources": []}

# h1 with other substrate MTUs: a 1400-byte NIC, and jumbo frames.
WORLD_H1_1400 = dict(WORLD_H1, if_cfg=dict(WORLD_H1["if_cfg"], mtu=1400))
WORLD_H1_9000 = dict(WORLD_H1, if_cfg=dict(WORLD_H1["if_cfg"], mtu=9000))

# h1 as a backend's host: it holds the scaled endpoint 10.0.0.9 its 10.0.0.5 serves.
VIP_IP = "10.0.0.9"
VIP_OPT = 8  # MZR_OPT_LB_BACKEND_LEN
WORLD_H1_VIP = dict(WORLD_H1, endpoints=WORLD_H1["endpoints"] + [
    ep(100, 9, type="scaled", backends=["10.0.0.5", "10.0.0.6"])])

WORLD_H1_VIP_1400 = dict(WORLD_H1_VIP, if_cfg=dict(WORLD_H1["if_cfg"], mtu=1400))

WORLDS = {"b": WORLD_B, "h1": WORLD_H1, "bare": WORLD_BARE, "h1_1400": WORLD_H1_1400, "h1_9000": WORLD_H1_9000,
          "h1_vip": WORLD_H1_VIP, "h1_vip_1400": WORLD_H1_VIP_1400}


# the datapath's flow hash and hop choice (bpf/include/mzr_hash.h), as abi.py computes them
flow_hash = abi.flow_hash
pick = abi.pick


Fixture = collections.namedtuple(
    "Fixture", "name description world program packet verdict output counters ingress")


def fx(name, description, packet, verdict, output=None, counters=(), world="b", program="transit", ingress=0):
    """output None: the packet must come out unchanged."""
    return Fixture(name, description, world, program, packet, verdict, packet if output is None else output,
                   dict(counters), ingress)


# ------------------------------------------------------------------ builders

def enc(inner, vni=100, src="h1", ttl=64, options=b"", tos=0, **kw):
    """An encapsulated packet arriving at b from src."""
    return P.outer(mac(src), mac("b"), ip(src), ip("b"), P.geneve_header(vni, options, **kw) + inner, ttl=ttl,
                   tos=tos)


def v4(src_last, dst, vni=100, dst_mac=None, **kw):
    return P.inner_ipv4(ep_mac(vni, src_last), dst_mac or GW_MAC, "10.0.0.%d" % src_last, dst, **kw)


def bounced(pkt, to, ttl=63):
    return P.retarget(pkt, mac("b"), mac(to), ip("b"), ip(to), ttl)


def host_of(addr):
    return [h for h, (a, dummy) in HOSTS.items() if a == addr][0]


def divided(pkt, hops, src, dst, ttl=63):
    return bounced(pkt, host_of(pick(hops, src, dst)), ttl)


def decapped(frame, dst_mac):
    return P.with_dst_mac(frame, dst_mac)


TX_BOUNCE = {"tx": 1, "bounce": 1}
TX_DIVIDE = {"tx": 1, "divide": 1}
TX_TO_DIVIDER = {"tx": 1, "to_divider": 1}


def drop(reason):
    return {"drop": 1, reason: 1}


PASS = {"pass": 1}

# ------------------------------------------------------------------ the table


def _with_udp_checksum(pkt):
    """pkt with its outer UDP checksum computed, as a sender that sets one does."""
    o = Ether(pkt)
    del o[UDP].chksum
    return bytes(o)


def _oc_add(a, b):
    total = a + b
    return (total & 0xFFFF) + (total >> 16)


def _bypass_checksum_ffff():
    """(in, out): a frame routed to the bypass endpoint 10.0.0.8 whose inner
    destination MAC already shares its first word with the endpoint's, and
    whose outer UDP checksum is 0xffff (a computed 0): the first word's
    update leaves a running checksum of 0, which the others must still
    update. An option's data word is chosen to make the sum so."""
    first = ep_mac(100, 8)[:5] + ":00:00:00:01"

    def build(word):
        opt = P.geneve_option(data=word.to_bytes(2, "big") + b"\0\0")
        return (_with_udp_checksum(enc(v4(5, "10.0.0.8", dst_mac=first), options=opt)),
                _with_udp_checksum(enc(v4(5, "10.0.0.8", dst_mac=ep_mac(100, 8)), options=opt)))

    total = ~int.from_bytes(build(0)[0][40:42], "big") & 0xFFFF  # the ones' complement sum with word 0
    pkt, out = build(_oc_add(0, 0xFFFF - total) & 0xFFFF)
    assert pkt[40:42] == b"\xff\xff", pkt[40:42].hex()
    return pkt, out


def _frag(**kw):  # a 10.0.0.5 -> 10.0.0.6 packet, already addressed to 10.0.0.6
    return v4(5, "10.0.0.6", dst_mac=ep_mac(100, 6), **kw)


_opt = P.geneve_option(data=b"\x11\x22\x33\x44\x55\x66\x77\x88")
_in_5_6 = v4(5, "10.0.0.6", dst_mac=ep_mac(100, 6))
_in_5_7 = v4(5, "10.0.0.7")
_div_in = P.inner_ipv4(ep_mac(300, 9), GW_MAC, "10.3.1.9", "10.3.0.77")
_arp_5_6 = P.inner_arp_request(ep_mac(100, 5), "10.0.0.5", "10.0.0.6")
_arp_5_1 = P.inner_arp_request(ep_mac(100, 5), "10.0.0.5", "10.0.0.1")
_arp_5_7 = P.inner_arp_request(ep_mac(100, 5), "10.0.0.5", "10.0.0.7")


def _arp_answered(request_inner, target_ip, target_mac, requester="h1"):
    reply = P.inner_arp_reply(target_mac, target_ip, ep_mac(100, 5), "10.0.0.5")
    pkt = enc(request_inner, src=requester)
    o = Ether(pkt)
    return P.outer(mac("b"), mac(requester), ip("b"), ip(requester), P.geneve_header(100) + reply,
                   ttl=64, ip_id=o[IP].id)


FORWARDING = [
    fx("bouncer", "remote endpoint: outer rewritten to its host, TTL-1, checksum, XDP_TX",
       enc(_in_5_6), XDP_TX, bounced(enc(_in_5_6), "h2"), TX_BOUNCE),
    fx("bouncer_options", "Geneve options are walked and carried unchanged",
       enc(_in_5_6, options=_opt), XDP_TX, bounced(enc(_in_5_6, options=_opt), "h2"), TX_BOUNCE),
    fx("bouncer_ttl2", "TTL 2 still forwards, with TTL 1",
       enc(_in_5_6, ttl=2), XDP_TX, bounced(enc(_in_5_6, ttl=2), "h2", ttl=1), TX_BOUNCE),
    fx("divider", "known network of the VPC: to the bouncer the flow hash picks",
       enc(_div_in, vni=300), XDP_TX,
       divided(enc(_div_in, vni=300), [ip("h4"), ip("h5")], "10.3.1.9", "10.3.0.77"), TX_DIVIDE),
    fx("divider_single", "network with one bouncer",
       enc(P.inner_ipv4(ep_mac(300, 7), GW_MAC, "10.3.0.7", "10.3.1.20"), vni=300), XDP_TX,
       bounced(enc(P.inner_ipv4(ep_mac(300, 7), GW_MAC, "10.3.0.7", "10.3.1.20"), vni=300), "h1"), TX_DIVIDE),
    fx("to_divider", "unknown endpoint, unknown network: to a divider of the VPC",
       enc(v4(5, "10.0.5.5")), XDP_TX, bounced(enc(v4(5, "10.0.5.5")), "d"), TX_TO_DIVIDER),
    fx("local", "endpoint hosted here: the exact inner frame, its MAC as destination, XDP_REDIRECT",
       enc(_in_5_7), XDP_REDIRECT, decapped(_in_5_7, ep_mac(100, 7)), {"redirect": 1, "decap": 1}),
    fx("local_options", "decapsulation skips the options",
       enc(_in_5_7, options=_opt + _opt), XDP_REDIRECT, decapped(_in_5_7, ep_mac(100, 7)),
       {"redirect": 1, "decap": 1}),
    fx("local_ttl1", "outer TTL does not matter to local delivery",
       enc(_in_5_7, ttl=1), XDP_REDIRECT, decapped(_in_5_7, ep_mac(100, 7)), {"redirect": 1, "decap": 1}),
    fx("bypass", "bypass-decap endpoint: the whole tunnel packet, its inner frame addressed to the endpoint",
       enc(v4(5, "10.0.0.8")), XDP_REDIRECT, enc(v4(5, "10.0.0.8", dst_mac=ep_mac(100, 8))),
       {"redirect": 1, "bypass": 1}),
    fx("bypass_addressed", "bypass-decap endpoint, inner frame already addressed to it: unchanged",
       enc(v4(5, "10.0.0.8", dst_mac=ep_mac(100, 8))), XDP_REDIRECT, None, {"redirect": 1, "bypass": 1}),
    fx("bypass_udp_checksum", "bypass-decap endpoint: a sender's outer UDP checksum is updated with the inner MAC",
       _with_udp_checksum(enc(v4(5, "10.0.0.8"))), XDP_REDIRECT,
       _with_udp_checksum(enc(v4(5, "10.0.0.8", dst_mac=ep_mac(100, 8)))), {"redirect": 1, "bypass": 1}),
    fx("bypass_udp_checksum_ffff", "bypass-decap endpoint: every MAC word updates the outer UDP checksum, "
       "also after a running value of 0", _bypass_checksum_ffff()[0], XDP_REDIRECT, _bypass_checksum_ffff()[1],
       {"redirect": 1, "bypass": 1}),
    fx("bypass_arp", "bypass-decap endpoint: an ARP request is the tunnel packet as it came",
       enc(P.inner_arp_request(ep_mac(100, 5), "10.0.0.5", "10.0.0.8")), XDP_REDIRECT, None,
       {"redirect": 1, "bypass": 1}),
    fx("arp_remote", "ARP for a remote endpoint: answered by the bouncer, sent back to the asker's host",
       enc(_arp_5_6), XDP_TX, _arp_answered(_arp_5_6, "10.0.0.6", ep_mac(100, 6)), {"tx": 1, "arp_reply": 1}),
    fx("arp_gateway", "ARP for the network's gateway: answered with the gateway MAC",
       enc(_arp_5_1), XDP_TX, _arp_answered(_arp_5_1, "10.0.0.1", GW_MAC), {"tx": 1, "arp_reply": 1}),
    fx("arp_local", "ARP for an endpoint hosted here: delivered to it, not answered",
       enc(_arp_5_7), XDP_REDIRECT, decapped(_arp_5_7, ep_mac(100, 7)), {"redirect": 1, "decap": 1}),
    fx("arp_gratuitous", "gratuitous ARP updates caches the overlay does not have: dropped, not sent back "
       "to its owner", enc(P.inner_arp_request(ep_mac(100, 6), "10.0.0.6", "10.0.0.6"), src="h2"), XDP_DROP, None,
       drop("arp_gratuitous")),
    fx("arp_reply_forwarded", "ARP replies travel like IPv4, by target address",
       enc(P.inner_arp_reply(ep_mac(100, 6), "10.0.0.6", ep_mac(100, 5), "10.0.0.5"), src="h2"), XDP_TX,
       bounced(enc(P.inner_arp_reply(ep_mac(100, 6), "10.0.0.6", ep_mac(100, 5), "10.0.0.5"), src="h2"), "h1"),
       TX_BOUNCE),
    fx("inner_ip_options", "inner IPv4 with options: forwarded, the options untouched",
       enc(_frag(options=b"\x01\x01\x01\x00")), XDP_TX, bounced(enc(_frag(options=b"\x01\x01\x01\x00")), "h2"),
       TX_BOUNCE),
    fx("inner_fragment_mf", "inner first fragment (MF): forwarded like any packet of the flow",
       enc(_frag(flags="MF")), XDP_TX, bounced(enc(_frag(flags="MF")), "h2"), TX_BOUNCE),
    fx("inner_fragment_offset", "inner later fragment: its addresses are all forwarding needs",
       enc(_frag(frag=20)), XDP_TX, bounced(enc(_frag(frag=20)), "h2"), TX_BOUNCE),
    fx("local_fragment", "inner fragment to an endpoint hosted here: delivered, unchanged",
       enc(v4(5, "10.0.0.7", frag=20)), XDP_REDIRECT, decapped(v4(5, "10.0.0.7", frag=20), ep_mac(100, 7)),
       {"redirect": 1, "decap": 1}),
    fx("local_ip_options", "inner IPv4 with options to an endpoint hosted here: delivered, unchanged",
       enc(v4(5, "10.0.0.7", options=b"\x01\x01\x01\x00")), XDP_REDIRECT,
       decapped(v4(5, "10.0.0.7", options=b"\x01\x01\x01\x00"), ep_mac(100, 7)), {"redirect": 1, "decap": 1}),
    fx("scaled_no_fn", "scaled endpoint with ON_XDP_SCALED_EP empty: dropped and counted",
       enc(v4(5, "10.0.0.9")), XDP_DROP, None, {"scaled": 1, "drop": 1, "scaled_no_fn": 1}),
    fx("to_gateway", "IPv4 addressed to a gateway is dropped",
       enc(v4(5, "10.0.0.1")), XDP_DROP, None, drop("to_gateway")),
    fx("bouncer_no_endpoint", "no such endpoint in a network this host bounces for: dropped here, "
       "not sent round between bouncer and divider", enc(v4(5, "10.0.0.99")), XDP_DROP, None, drop("no_endpoint")),
    fx("divider_no_network", "this host divides the VPC and knows no network for the address: drop",
       enc(P.inner_ipv4(ep_mac(300, 9), GW_MAC, "10.3.1.9", "10.3.9.9"), vni=300), XDP_DROP, None,
       drop("no_network")),
]

ISOLATION = [
    fx("same_ip_vni100", "10.0.0.5 in VNI 100 goes to its host h1, the inner frame addressed to it",
       enc(v4(6, "10.0.0.5")), XDP_TX,
       P.with_inner_dst_mac(bounced(enc(v4(6, "10.0.0.5")), "h1"), ep_mac(100, 5)), TX_BOUNCE),
    fx("same_ip_vni200", "10.0.0.5 in VNI 200 goes to its own host h6, the inner frame addressed to it",
       enc(v4(6, "10.0.0.5", vni=200), vni=200), XDP_TX,
       P.with_inner_dst_mac(bounced(enc(v4(6, "10.0.0.5", vni=200), vni=200), "h6"), ep_mac(200, 5)), TX_BOUNCE),
    fx("local_other_vni", "VNI 200 traffic for 10.0.0.7 is never delivered to VNI 100's local endpoint",
       enc(v4(6, "10.0.0.7", vni=200), vni=200), XDP_TX,
       bounced(enc(v4(6, "10.0.0.7", vni=200), vni=200), "d"), TX_TO_DIVIDER),
    fx("unknown_vni", "a VNI this host knows nothing of is dropped",
       enc(v4(6, "10.0.0.5", vni=999), vni=999), XDP_DROP, None, drop("unknown_vni")),
]


def _ipv6_inner():
    return bytes(Ether(P.ipv6_nd(ep_mac(100, 5))))


def _bad_version():
    b = bytearray(_in_5_6)
    b[14] = 0x65  # version 6, IHL 5, under an IPv4 ethertype
    return bytes(b)


def _long_totlen():
    b = bytearray(_in_5_6)
    b[16:18] = (len(b) - 14 + 40).to_bytes(2, "big")
    return bytes(b)


def _arp_hlen8():
    b = bytearray(_arp_5_6)
    b[18] = 8
    return bytes(b)


MALFORMED = [
    fx("ttl1", "TTL 1 would expire on the way to the next hop", enc(_in_5_6, ttl=1), XDP_DROP, None, drop("ttl")),
    fx("ttl0", "TTL 0", enc(_in_5_6, ttl=0), XDP_DROP, None, drop("ttl")),
    fx("geneve_version", "Geneve version 1", enc(_in_5_6, version=1), XDP_DROP, None, drop("geneve_version")),
    fx("geneve_not_ethernet", "Geneve carrying bare IPv4, not Ethernet",
       enc(_in_5_6[14:], proto=0x0800), XDP_DROP, None, drop("geneve_proto")),
    fx("geneve_optlen_beyond", "option length past the end of the packet",
       P.outer(mac("h1"), mac("b"), ip("h1"), ip("b"), P.geneve_header(100, optlen=63) + b"\0" * 8),
       XDP_DROP, None, drop("geneve_optlen")),
    fx("geneve_option_overruns", "an option TLV longer than the option area",
       P.outer(mac("h1"), mac("b"), ip("h1"), ip("b"),
               P.geneve_header(100, options=bytes([1, 2, 3, 5]) + b"\0" * 4, optlen=2) + _in_5_6),
       XDP_DROP, None, drop("geneve_optlen")),
    fx("inner_ipv6", "inner IPv6 frame", enc(_ipv6_inner()), XDP_DROP, None, drop("inner_proto")),
    fx("inner_ip_version", "inner header not version 4", enc(_bad_version()), XDP_DROP, None, drop("inner_ip_bad")),
    fx("inner_ip_totlen", "inner total length beyond the packet", enc(_long_totlen()), XDP_DROP, None,
       drop("inner_ip_bad")),
    fx("inner_arp_hlen", "inner ARP with an 8-byte hardware address", enc(_arp_hlen8()), XDP_DROP, None,
       drop("inner_arp_bad")),
]


def _truncations():
    """The bouncer packet cut at every header boundary (and inside each
    header). Cuts before the UDP header is whole are not Geneve to us and
    pass. A cut packet whose outer lengths still say the full size is
    dropped for them; the same cut with lengths that match it is dropped
    by the parser of the header it cuts."""
    full = enc(_in_5_6, options=_opt)
    out = [fx("truncated_" + label, "cut at byte %d (%s)" % (cut, label), full[:cut], XDP_PASS, None, PASS)
           for cut, label in ((14, "outer_ip_start"), (24, "outer_ip_mid"), (34, "outer_udp_start"),
                              (38, "outer_udp_mid"))]
    marks = [
        (42, "geneve_start", "geneve_trunc"), (46, "geneve_mid", "geneve_trunc"),
        (50, "options_start", "geneve_optlen"), (55, "options_mid", "geneve_optlen"),
        (62, "inner_eth_start", "inner_trunc"), (70, "inner_eth_mid", "inner_trunc"),
        (76, "inner_ip_start", "inner_trunc"), (86, "inner_ip_mid", "inner_trunc"),
    ]
    for cut, label, reason in marks:
        out.append(fx("truncated_" + label, "cut at byte %d (%s), outer lengths unchanged" % (cut, label),
                      full[:cut], XDP_DROP, None, drop("outer_len")))
        out.append(fx("truncated_%s_lengths" % label, "cut at byte %d (%s), outer lengths matching the cut"
                      % (cut, label), P.with_outer_lengths(full[:cut]), XDP_DROP, None, drop(reason)))
    return out


MALFORMED += _truncations()


# ------------------------------------------------------------------ untrusted substrate, RFC 8926, outer header

_INTRUDER = ("203.0.113.66", "02:00:00:00:66:66")


def from_addr(inner, src_ip, src_mac, vni=100, **kw):
    """An encapsulated packet arriving at b from any address."""
    return P.outer(src_mac, mac("b"), src_ip, ip("b"), P.geneve_header(vni, **kw) + inner)


def _crit_opt():
    return P.geneve_option(typ=0x81, data=b"\0\0\0\0")  # type with the critical bit


_in_99_7 = P.inner_ipv4(ep_mac(100, 99), GW_MAC, "10.0.0.99", "10.0.0.7")
_in_99_6 = P.inner_ipv4(ep_mac(100, 99), GW_MAC, "10.0.0.99", "10.0.0.6")
_peer_in = P.inner_ipv4("02:00:00:00:00:78", GW_MAC, "10.0.0.50", "10.0.0.7")

SECURITY = [
    fx("untrusted_local", "Geneve from a host that is no transit host: never decapsulated into the VPC",
       from_addr(_in_99_7, *_INTRUDER), XDP_DROP, None, drop("untrusted_src")),
    fx("untrusted_relay", "Geneve from a stranger to a remote endpoint: never relayed under this host's address",
       from_addr(_in_99_6, *_INTRUDER), XDP_DROP, None, drop("untrusted_src")),
    fx("untrusted_self", "Geneve claiming to come from this very host: dropped",
       from_addr(_in_5_7, ip("b"), mac("h1")), XDP_DROP, None, drop("untrusted_src")),
    fx("untrusted_arp", "an ARP request from a stranger is not answered",
       from_addr(_arp_5_6, *_INTRUDER), XDP_DROP, None, drop("untrusted_src")),
    fx("peer_other_vni", "a tunnel peer is trusted for its VPC only",
       from_addr(P.inner_ipv4("02:00:00:00:00:78", GW_MAC, "10.0.0.50", "10.0.0.5", ), *PEER, vni=200),
       XDP_DROP, None, drop("untrusted_src")),
    fx("geneve_critical_bit", "C bit: critical options this host cannot know (RFC 8926 3.5)",
       enc(_in_5_7, options=_opt, flags=0x40), XDP_DROP, None, drop("geneve_critical")),
    fx("geneve_critical_option", "an option with the critical type bit, even with the C bit clear",
       enc(_in_5_7, options=_opt + _crit_opt()), XDP_DROP, None, drop("geneve_critical")),
    fx("geneve_noncritical_option", "unknown options without the critical bit are skipped",
       enc(_in_5_7, options=P.geneve_option(typ=0x7f)), XDP_REDIRECT, decapped(_in_5_7, ep_mac(100, 7)),
       {"redirect": 1, "decap": 1}),
    fx("geneve_oam_arp", "O bit: a control packet is not data; its inner ARP is not answered",
       enc(_arp_5_6, flags=0x80), XDP_DROP, None, drop("geneve_oam")),
    fx("geneve_oam_local", "O bit: a control packet is never delivered to an endpoint",
       enc(_in_5_7, flags=0x80), XDP_DROP, None, drop("geneve_oam")),
    fx("outer_totlen_2", "outer IPv4 total length 2", P.with_outer_lengths(enc(_in_5_6), tot_len=2), XDP_DROP, None,
       drop("outer_len")),
    fx("outer_totlen_long", "outer IPv4 total length past the frame",
       P.with_outer_lengths(enc(_in_5_6), tot_len=len(enc(_in_5_6)) - 14 + 8), XDP_DROP, None, drop("outer_len")),
    fx("outer_totlen_short", "outer IPv4 total length shorter than the frame",
       P.with_outer_lengths(enc(_in_5_6), tot_len=len(enc(_in_5_6)) - 14 - 4), XDP_DROP, None, drop("outer_len")),
    fx("outer_udplen", "UDP length that disagrees with the IPv4 total length",
       P.with_outer_lengths(enc(_in_5_6), udp_len=len(enc(_in_5_6)) - 34 - 4), XDP_DROP, None, drop("outer_len")),
    fx("outer_udplen_8", "UDP length 8: no payload, whatever follows",
       P.with_outer_lengths(enc(_in_5_6), udp_len=8), XDP_DROP, None, drop("outer_len")),
    fx("outer_ip_options", "Geneve to this host with outer IPv4 options: dropped, never handed to the host",
       P.outer(mac("h1"), mac("b"), ip("h1"), ip("b"), P.geneve_header(100) + _in_5_6, ip_options=b"\x01\x01\x01\x00"),
       XDP_DROP, None, drop("outer_ip_opts")),
    fx("outer_ip_options_other", "IPv4 with options to another host is the host's business",
       P.outer(mac("h1"), mac("b"), ip("h1"), "192.168.0.200", P.geneve_header(100) + _in_5_6,
               ip_options=b"\x01\x01\x01\x00"), XDP_PASS, None, PASS),
    fx("arp_probe", "an RFC 5227 probe (sender 0.0.0.0) is not answered: the reply could not be routed back",
       enc(P.inner_arp_request(ep_mac(100, 5), "0.0.0.0", "10.0.0.6")), XDP_DROP, None, drop("arp_sender")),
    fx("arp_sender_broadcast_mac", "an ARP request from the broadcast MAC is not answered",
       enc(P.inner_arp_request("ff:ff:ff:ff:ff:ff", "10.0.0.5", "10.0.0.6", eth_src=ep_mac(100, 5))), XDP_DROP,
       None, drop("arp_sender")),
    fx("arp_sender_multicast_mac", "an ARP request from a multicast MAC is not answered",
       enc(P.inner_arp_request("01:00:5e:00:00:01", "10.0.0.5", "10.0.0.6", eth_src=ep_mac(100, 5))), XDP_DROP,
       None, drop("arp_sender")),
    fx("arp_sender_zero_mac", "an ARP request from MAC 00:00:00:00:00:00 is not answered",
       enc(P.inner_arp_request("00:00:00:00:00:00", "10.0.0.5", "10.0.0.6", eth_src=ep_mac(100, 5))), XDP_DROP,
       None, drop("arp_sender")),
    fx("arp_sender_multicast_ip", "an ARP request from a multicast IPv4 sender is not answered",
       enc(P.inner_arp_request(ep_mac(100, 5), "224.0.0.1", "10.0.0.6")), XDP_DROP, None, drop("arp_sender")),
    fx("arp_sender_broadcast_ip", "an ARP request from 255.255.255.255 is not answered",
       enc(P.inner_arp_request(ep_mac(100, 5), "255.255.255.255", "10.0.0.6")), XDP_DROP, None,
       drop("arp_sender")),
]


# ------------------------------------------------------------------ what a tunnel peer may send
# World "tp": b as in world b, with 10.0.0.50 of VPC 100 behind the tunnel
# peer PEER and 10.0.0.51 behind a second peer PEER2 (both trusted for VNI
# 100 only). A peer speaks for the endpoints behind it and for nothing
# else: not another endpoint of its VPC, nor an address of a VPC peered
# with its own (whose owner would get the replies across the peering).

PEER2 = ("192.168.0.78", "02:00:00:00:00:78")
WORLD_TP = dict(
    WORLD_B,
    endpoints=WORLD_B["endpoints"] + [ep(100, 50, host_ip=PEER[0]), ep(100, 51, host_ip=PEER2[0])],
    substrate=WORLD_B["substrate"] + [{"ip": PEER[0], "mac": PEER[1]}, {"ip": PEER2[0], "mac": PEER2[1]}],
    sources=SOURCES + [{"ip": PEER2[0], "vni": 100}])
WORLDS["tp"] = WORLD_TP


def _tp(name, description, packet, verdict, output=None, counters=()):
    return fx(name, description, packet, verdict, output, counters, world="tp")


def _from_peer(src_last, dst, peer=PEER, **kw):
    """A packet from the tunnel peer peer, inner source 10.0.0.<src_last>."""
    return from_addr(v4(src_last, dst, **kw), *peer)


def _from_peer_arp(sender, target, peer=PEER):
    return from_addr(P.inner_arp_request(ep_mac(100, 50), sender, target), *peer)


def _peer_arp_answered(target_ip, target_mac):
    """b's answer to PEER's ARP request from 10.0.0.50: back to the peer."""
    reply = P.inner_arp_reply(target_mac, target_ip, ep_mac(100, 50), "10.0.0.50")
    return P.outer(mac("b"), PEER[1], ip("b"), PEER[0], P.geneve_header(100) + reply, ttl=64)


_red_in = P.inner_ipv4(ep_mac(100, 50), GW_MAC, "10.4.1.5", "10.0.0.7")  # an address of a peered VPC

TUNNEL_SRC = [
    _tp("peer_trusted", "a tunnel peer sends from the endpoint behind it: delivered",
        from_addr(_peer_in, *PEER), XDP_REDIRECT, decapped(_peer_in, ep_mac(100, 7)), {"redirect": 1, "decap": 1}),
    _tp("peer_own_endpoint_bounced", "a tunnel peer sends from its endpoint to a remote one: bounced to its host",
        _from_peer(50, "10.0.0.5"), XDP_TX,
        P.with_inner_dst_mac(bounced(_from_peer(50, "10.0.0.5"), "h1"), ep_mac(100, 5)), TX_BOUNCE),
    _tp("peer_own_endpoint_arp", "a tunnel peer's ARP request from its endpoint: answered, back to the peer",
        _from_peer_arp("10.0.0.50", "10.0.0.6"), XDP_TX, _peer_arp_answered("10.0.0.6", ep_mac(100, 6)),
        {"tx": 1, "arp_reply": 1}),
    _tp("peer_src_other_endpoint", "a tunnel peer speaking for an endpoint of its VPC on a transit host",
        _from_peer(5, "10.0.0.7"), XDP_DROP, None, drop("tunnel_src")),
    _tp("peer_src_other_peers_endpoint", "a tunnel peer speaking for an endpoint behind another peer",
        _from_peer(51, "10.0.0.7"), XDP_DROP, None, drop("tunnel_src")),
    _tp("peer_src_other_peer_relay", "the same, to a remote endpoint: never relayed under this host's address",
        _from_peer(51, "10.0.0.5"), XDP_DROP, None, drop("tunnel_src")),
    _tp("peer_src_peered_vpc", "a tunnel peer speaking for an address of a peered VPC: the endpoint's replies "
        "would cross the peering to that address's owner", from_addr(_red_in, *PEER), XDP_DROP, None,
        drop("tunnel_src")),
    _tp("peer_src_no_endpoint", "a tunnel peer sending from an address of its VPC that no endpoint has",
        _from_peer(99, "10.0.0.7"), XDP_DROP, None, drop("tunnel_src")),
    _tp("peer_src_gateway", "a tunnel peer sending from the network's gateway address",
        _from_peer(1, "10.0.0.7"), XDP_DROP, None, drop("tunnel_src")),
    _tp("peer_src_scaled", "a tunnel peer sending from a scaled endpoint's address",
        _from_peer(9, "10.0.0.7"), XDP_DROP, None, drop("tunnel_src")),
    _tp("peer_src_local", "a tunnel peer sending from the address of an endpoint hosted here",
        _from_peer(8, "10.0.0.7"), XDP_DROP, None, drop("tunnel_src")),
    _tp("peer_arp_foreign_sender", "ARP from a tunnel peer naming another endpoint as its sender (a cache "
        "poisoning of the endpoint it reaches)", _from_peer_arp("10.0.0.5", "10.0.0.7"), XDP_DROP, None,
        drop("tunnel_src")),
    _tp("peer_arp_foreign_sender_answered", "the same, for an endpoint the bouncer would answer for",
        _from_peer_arp("10.0.0.5", "10.0.0.6"), XDP_DROP, None, drop("tunnel_src")),
    _tp("peer_arp_peered_vpc_sender", "ARP from a tunnel peer with a peered VPC's address as its sender",
        _from_peer_arp("10.4.1.5", "10.0.0.7"), XDP_DROP, None, drop("tunnel_src")),
    _tp("peer_arp_probe", "a tunnel peer's RFC 5227 probe is refused as any probe is, for its sender",
        _from_peer_arp("0.0.0.0", "10.0.0.6"), XDP_DROP, None, drop("arp_sender")),
    _tp("peer_src_second_peer", "the second peer sends from the endpoint behind it: delivered",
        _from_peer(51, "10.0.0.7", peer=PEER2), XDP_REDIRECT, decapped(v4(51, "10.0.0.7"), ep_mac(100, 7)),
        {"redirect": 1, "decap": 1}),
    _tp("transit_host_any_source", "a transit host is trusted for any inner source, as before (a divider "
        "relays what crosses a peering)", enc(_red_in), XDP_REDIRECT, decapped(_red_in, ep_mac(100, 7)),
        {"redirect": 1, "decap": 1}),
]


# ------------------------------------------------------------------ ECN (RFC 6040) and DSCP

def _ecn_in(ecn, dscp=0x28):
    return v4(5, "10.0.0.7", tos=(dscp << 2) | ecn)


def _ecn_out(ecn, dscp=0x28):
    return decapped(_ecn_in(ecn, dscp), ep_mac(100, 7))


NOT_ECT, ECT1, ECT0, CE = 0, 1, 2, 3
DECAP = {"redirect": 1, "decap": 1}

ECN = [
    fx("ecn_ce_over_ect0", "outer CE over an ECT(0) packet: delivered marked CE, checksum fixed",
       enc(_ecn_in(ECT0), tos=CE), XDP_REDIRECT, _ecn_out(CE), DECAP),
    fx("ecn_ce_over_ect1", "outer CE over an ECT(1) packet: delivered marked CE",
       enc(_ecn_in(ECT1), tos=CE), XDP_REDIRECT, _ecn_out(CE), DECAP),
    fx("ecn_ce_over_not_ect", "outer CE over a not-ECT packet: its sender cannot be told, dropped",
       enc(_ecn_in(NOT_ECT), tos=CE), XDP_DROP, None, drop("inner_ecn")),
    fx("ecn_ect1_over_ect0", "outer ECT(1) over ECT(0): the inner becomes ECT(1)",
       enc(_ecn_in(ECT0), tos=ECT1), XDP_REDIRECT, _ecn_out(ECT1), DECAP),
    fx("ecn_ect0_over_ect1", "outer ECT(0) over ECT(1): the inner stays ECT(1)",
       enc(_ecn_in(ECT1), tos=ECT0), XDP_REDIRECT, _ecn_out(ECT1), DECAP),
    fx("ecn_not_ect_outer", "outer not-ECT: the inner ECN and DSCP are untouched",
       enc(_ecn_in(CE), tos=NOT_ECT), XDP_REDIRECT, _ecn_out(CE), DECAP),
    fx("ecn_bounce", "a bounce carries the outer ECN and DSCP unchanged",
       enc(_in_5_6, tos=0xa3), XDP_TX, bounced(enc(_in_5_6, tos=0xa3), "h2"), TX_BOUNCE),
    fx("ecn_bypass", "a bypass endpoint gets the tunnel packet with its ECN fields as they came",
       enc(v4(5, "10.0.0.8", tos=ECT0), tos=CE), XDP_REDIRECT,
       enc(v4(5, "10.0.0.8", tos=ECT0, dst_mac=ep_mac(100, 8)), tos=CE), {"redirect": 1, "bypass": 1}),
]

_host_mac, _peer = "02:00:00:00:00:77", "192.168.0.77"
HOST_SAFETY = [
    fx("ssh", "SSH to the host", P.ssh_syn(_host_mac, mac("b"), _peer, ip("b")), XDP_PASS, None, PASS),
    fx("arp_host", "ARP for the host's own address", P.arp_for_host(_host_mac, _peer, ip("b")), XDP_PASS, None, PASS),
    fx("dhcp", "DHCP discover broadcast", P.dhcp_discover(_host_mac), XDP_PASS, None, PASS),
    fx("ipv6_nd", "IPv6 neighbour solicitation", P.ipv6_nd(_host_mac), XDP_PASS, None, PASS),
    fx("icmp", "ping to the host", P.ping(_host_mac, mac("b"), _peer, ip("b")), XDP_PASS, None, PASS),
    fx("dns", "other UDP to the host", P.udp_to(_host_mac, mac("b"), _peer, ip("b"), 53), XDP_PASS, None, PASS),
    fx("geneve_other_host", "Geneve addressed to another host is not ours",
       P.outer(mac("h1"), mac("b"), ip("h1"), "192.168.0.200", P.geneve_header(100) + _in_5_6), XDP_PASS, None, PASS),
    fx("geneve_outer_fragment", "an outer fragment goes to the stack for reassembly",
       P.outer(mac("h1"), mac("b"), ip("h1"), ip("b"), P.geneve_header(100) + _in_5_6, flags="MF"), XDP_PASS,
       None, PASS),
]


# ------------------------------------------------------------------ agent

def agent_flow(frame):
    """(outer source port, outer TOS) the agent derives from an inner frame,
    read here independently of the datapath: the inner 5-tuple's hash
    (abi.outer_sport; ports only for unfragmented TCP/UDP/SCTP, after the
    IPv4 options) and the inner TOS (DSCP and ECN, RFC 6040 normal mode);
    for ARP the sender and target addresses, TOS 0."""
    if frame[12:14] == b"\x08\x06":
        return abi.outer_sport(socket.inet_ntoa(frame[28:32]), socket.inet_ntoa(frame[38:42])), 0
    hdr = frame[14:]
    ihl, proto = (hdr[0] & 0x0F) * 4, hdr[9]
    frag = int.from_bytes(hdr[6:8], "big") & 0x3FFF
    ports = hdr[ihl:ihl + 4] if proto in (6, 17, 132) and not frag else b""
    return abi.outer_sport(socket.inet_ntoa(hdr[12:16]), socket.inet_ntoa(hdr[16:20]), proto, ports), hdr[1]


def agent_encap(frame, src=None, dst=None, vni=100, dst_host="b", src_host="h1"):
    """The agent's tunnel packet for frame (src and dst: the inner addresses,
    for the reader; the frame itself decides)."""
    sport, tos = agent_flow(frame)
    return P.outer(mac(src_host), mac(dst_host), ip(src_host), ip(dst_host), P.geneve_header(vni) + frame,
                   ttl=64, sport=sport, ip_id=0, flags="DF", tos=tos)


_a_5_6 = P.inner_ipv4(ep_mac(100, 5), GW_MAC, "10.0.0.5", "10.0.0.6")
_a_5_4 = P.inner_ipv4(ep_mac(100, 5), GW_MAC, "10.0.0.5", "10.0.0.4")
_a_5_4_opts = P.inner_ipv4(ep_mac(100, 5), GW_MAC, "10.0.0.5", "10.0.0.4", options=b"\x01\x01\x01\x00")


def _agent_bad_ip(offset, value):
    """The endpoint's 10.0.0.5 -> 10.0.0.4 frame with one byte of its IPv4 header changed."""
    b = bytearray(_a_5_4)
    b[offset] = value
    return bytes(b)


_a_5_10 = P.inner_ipv4(ep_mac(100, 5), GW_MAC, "10.0.0.5", "10.0.0.10")
_a_arp = P.inner_arp_request(ep_mac(100, 5), "10.0.0.5", "10.0.0.6")
_b_7_6 = P.inner_ipv4(ep_mac(100, 7), GW_MAC, "10.0.0.7", "10.0.0.6")
_b_7_55 = P.inner_ipv4(ep_mac(100, 7), GW_MAC, "10.0.0.7", "10.0.5.5")
_b_arp = P.inner_arp_request(ep_mac(100, 7), "10.0.0.7", "10.0.0.6")

AGENT = [
    fx("agent_encap", "endpoint traffic: Geneve to its network's bouncer, out of the NIC",
       _a_5_6, XDP_REDIRECT, agent_encap(_a_5_6, "10.0.0.5", "10.0.0.6"), {"redirect": 1, "agent_encap": 1},
       world="h1", program="agent", ingress=LO),
    fx("agent_arp", "ARP from the endpoint goes to the bouncer too",
       _a_arp, XDP_REDIRECT, agent_encap(_a_arp, "10.0.0.5", "10.0.0.6"), {"redirect": 1, "agent_encap": 1},
       world="h1", program="agent", ingress=LO),
    fx("agent_local", "destination on the same host: straight to it, never leaving the host",
       _a_5_4, XDP_REDIRECT, P.with_dst_mac(_a_5_4, ep_mac(100, 4)), {"redirect": 1, "agent_local": 1},
       world="h1", program="agent", ingress=LO),
    fx("agent_local_bypass", "same-host bypass endpoint: gets the tunnel packet, addressed to this host, its "
       "inner frame to the endpoint",
       _a_5_10, XDP_REDIRECT, agent_encap(P.with_dst_mac(_a_5_10, ep_mac(100, 10)), "10.0.0.5", "10.0.0.10",
                                          dst_host="h1"),
       {"redirect": 1, "agent_encap": 1}, world="h1", program="agent", ingress=LO),
    fx("agent_local_ip_options", "same host, IPv4 options: delivered like any packet",
       _a_5_4_opts, XDP_REDIRECT, P.with_dst_mac(_a_5_4_opts, ep_mac(100, 4)), {"redirect": 1, "agent_local": 1},
       world="h1", program="agent", ingress=LO),
    fx("agent_ip_version", "an IPv4 ethertype over a header that is not version 4: dropped as the transit would",
       _agent_bad_ip(14, 0x65), XDP_DROP, None, drop("inner_ip_bad"), world="h1", program="agent", ingress=LO),
    fx("agent_ip_ihl4", "an IPv4 header length under 20 bytes", _agent_bad_ip(14, 0x44), XDP_DROP, None,
       drop("inner_ip_bad"), world="h1", program="agent", ingress=LO),
    fx("agent_ip_totlen", "an IPv4 total length past the frame", _agent_bad_ip(17, 0xff), XDP_DROP, None,
       drop("inner_ip_bad"), world="h1", program="agent", ingress=LO),
    fx("agent_spoof", "a source address that is not the endpoint's is dropped",
       P.inner_ipv4(ep_mac(100, 5), GW_MAC, "10.0.0.99", "10.0.0.6"), XDP_DROP, None, drop("agent_spoof"),
       world="h1", program="agent", ingress=LO),
    fx("agent_ipv6", "the overlay carries IPv4 and ARP only", P.ipv6_nd(ep_mac(100, 5)), XDP_DROP, None,
       drop("agent_proto"), world="h1", program="agent", ingress=LO),
    fx("agent_truncated", "an IPv4 ethertype with no IPv4 header",
       P.inner_ipv4(ep_mac(100, 5), GW_MAC, "10.0.0.5", "10.0.0.6")[:20], XDP_DROP, None, drop("agent_trunc"),
       world="h1", program="agent", ingress=LO),
    fx("agent_nocfg", "an interface with no agent configuration carries nothing",
       _a_5_6, XDP_DROP, None, drop("agent_nocfg"), world="bare", program="agent", ingress=LO),
    fx("agent_self_bouncer", "this host is the bouncer: encapsulate straight to the endpoint's host, "
       "the inner frame addressed to the endpoint",
       _b_7_6, XDP_REDIRECT,
       agent_encap(P.with_dst_mac(_b_7_6, ep_mac(100, 6)), "10.0.0.7", "10.0.0.6", dst_host="h2", src_host="b"),
       {"redirect": 1, "agent_encap": 1, "bounce": 1}, program="agent", ingress=LO),
    fx("agent_self_bouncer_divider", "this host is the bouncer, the endpoint unknown: to the VPC's divider",
       _b_7_55, XDP_REDIRECT, agent_encap(_b_7_55, "10.0.0.7", "10.0.5.5", dst_host="d", src_host="b"),
       {"redirect": 1, "agent_encap": 1, "to_divider": 1}, program="agent", ingress=LO),
    fx("agent_self_bouncer_arp", "this host is the bouncer: the agent answers ARP itself",
       _b_arp, XDP_TX, P.inner_arp_reply(ep_mac(100, 6), "10.0.0.6", ep_mac(100, 7), "10.0.0.7"),
       {"tx": 1, "arp_reply": 1}, program="agent", ingress=LO),
    fx("agent_self_bouncer_no_endpoint", "this host is the bouncer and the endpoint does not exist: dropped",
       P.inner_ipv4(ep_mac(100, 7), GW_MAC, "10.0.0.7", "10.0.0.99"), XDP_DROP, None, drop("no_endpoint"),
       program="agent", ingress=LO),
    fx("agent_self_bouncer_gateway", "IPv4 to the gateway is dropped",
       P.inner_ipv4(ep_mac(100, 7), GW_MAC, "10.0.0.7", "10.0.0.1"), XDP_DROP, None, drop("to_gateway"),
       program="agent", ingress=LO),
]


# ------------------------------------------------------------------ agent: path MTU

def sized(total, src=5, dst="10.0.0.6", src_mac=None, flags="DF", **kw):
    """An endpoint's IPv4/UDP frame whose IPv4 total length is total."""
    opts = kw.get("options", b"")
    return P.inner_ipv4(src_mac or ep_mac(100, src), GW_MAC, "10.0.0.%d" % src, dst,
                        payload=b"m" * (total - 28 - len(opts)), flags=flags, **kw)


def frag_needed(frame, nic_mtu, reserve=0):
    """What the agent must send back for a DF frame too big to encapsulate
    over a NIC of nic_mtu, built independently: scapy computes both
    checksums; the quote is the original IPv4 header (options included)
    and 8 bytes of its payload (RFC 792), the next-hop MTU nic_mtu - 50
    (RFC 1191), less reserve (the scaled function's option, to a VIP)."""
    orig = Ether(frame)
    hlen = orig[IP].ihl * 4
    quote = frame[14:14 + hlen + 8]
    return bytes(Ether(src=orig.dst, dst=orig.src)
                 / IP(src=orig[IP].dst, dst=orig[IP].src, tos=0xc0, id=0, flags=0, ttl=64, proto=1)
                 / ICMP(type=3, code=4, unused=0, nexthopmtu=nic_mtu - 50 - reserve) / Raw(quote))


PMTU = {"tx": 1, "agent_pmtu": 1}
_icmp_err = bytes(Ether(src=ep_mac(100, 5), dst=GW_MAC) / IP(src="10.0.0.5", dst="10.0.0.6", flags="DF")
                  / ICMP(type=3, code=1) / Raw(b"q" * 1423))  # IPv4 total length 1451

AGENT_MTU = [
    fx("agent_mtu_fits", "inner IPv4 of NIC MTU - 50 (1450) fits exactly: encapsulated, outer 1500",
       sized(1450), XDP_REDIRECT, agent_encap(sized(1450), "10.0.0.5", "10.0.0.6"),
       {"redirect": 1, "agent_encap": 1}, world="h1", program="agent", ingress=LO),
    fx("agent_mtu_frag_needed", "DF, one byte too big: ICMP fragmentation needed, next-hop MTU 1450, "
       "back out of the veth", sized(1451), XDP_TX, frag_needed(sized(1451), 1500), PMTU,
       world="h1", program="agent", ingress=LO),
    fx("agent_mtu_frag_needed_big", "DF, far too big (2000): the same reply, quoting 28 bytes",
       sized(2000), XDP_TX, frag_needed(sized(2000), 1500), PMTU, world="h1", program="agent", ingress=LO),
    fx("agent_mtu_frag_needed_options", "DF with IPv4 options: the quote holds the whole 24-byte header "
       "and 8 bytes more", sized(1460, options=b"\x01\x01\x01\x00"), XDP_TX,
       frag_needed(sized(1460, options=b"\x01\x01\x01\x00"), 1500), PMTU,
       world="h1", program="agent", ingress=LO),
    fx("agent_mtu_no_df", "too big and no DF: dropped and counted", sized(1451, flags=0), XDP_DROP, None,
       drop("agent_too_big"), world="h1", program="agent", ingress=LO),
    fx("agent_mtu_icmp_error", "an ICMP error too big gets no ICMP error back (RFC 1122): dropped",
       _icmp_err, XDP_DROP, None, drop("agent_too_big"),
       world="h1", program="agent", ingress=LO),
    fx("agent_mtu_later_fragment", "a later fragment with DF is not answered: dropped",
       sized(1451, flags="DF", frag=100), XDP_DROP, None, drop("agent_too_big"),
       world="h1", program="agent", ingress=LO),
    fx("agent_mtu_bypass_local", "same-host bypass endpoint: its tunnel packet must fit the NIC MTU too",
       sized(1451, dst="10.0.0.10"), XDP_TX, frag_needed(sized(1451, dst="10.0.0.10"), 1500), PMTU,
       world="h1", program="agent", ingress=LO),
    fx("agent_mtu_1400", "a 1400-byte NIC: 1350 fits", sized(1350), XDP_REDIRECT,
       agent_encap(sized(1350), "10.0.0.5", "10.0.0.6"), {"redirect": 1, "agent_encap": 1},
       world="h1_1400", program="agent", ingress=LO),
    fx("agent_mtu_1400_frag_needed", "a 1400-byte NIC: 1351 with DF gets next-hop MTU 1350",
       sized(1351), XDP_TX, frag_needed(sized(1351), 1400), PMTU, world="h1_1400", program="agent", ingress=LO),
    fx("agent_mtu_9000", "jumbo NIC (9000): 2000 bytes are encapsulated", sized(2000), XDP_REDIRECT,
       agent_encap(sized(2000), "10.0.0.5", "10.0.0.6"), {"redirect": 1, "agent_encap": 1},
       world="h1_9000", program="agent", ingress=LO),
    fx("agent_mtu_unknown", "MTU 0 (not known) is taken as 1500: the bouncer host's agent answers 1451 "
       "with next-hop MTU 1450", sized(1451, src=7, dst="10.0.5.5"), XDP_TX,
       frag_needed(sized(1451, src=7, dst="10.0.5.5"), 1500), dict(PMTU, to_divider=1), program="agent", ingress=LO),
    fx("agent_mtu_self_bouncer", "this host is the bouncer and has already addressed the inner frame to the "
       "endpoint: the reply comes from that MAC (the endpoint does not check it)",
       sized(1451, src=7, dst="10.0.0.6"), XDP_TX,
       frag_needed(P.with_dst_mac(sized(1451, src=7, dst="10.0.0.6"), ep_mac(100, 6)), 1500), dict(PMTU, bounce=1),
       program="agent", ingress=LO),
    # to a scaled endpoint's VIP (10.0.0.9): 8 bytes are kept for the scaled function's backend option
    fx("agent_mtu_vip_fits", "to a VIP, inner IPv4 of NIC MTU - 58 (1442) fits: encapsulated to the bouncer",
       sized(1442, dst=VIP_IP), XDP_REDIRECT, agent_encap(sized(1442, dst=VIP_IP), "10.0.0.5", VIP_IP),
       {"redirect": 1, "agent_encap": 1}, world="h1_vip", program="agent", ingress=LO),
    fx("agent_mtu_vip_frag_needed", "to a VIP, DF, 1443 bytes: fits the tunnel but not the option; "
       "fragmentation needed with next-hop MTU 1442", sized(1443, dst=VIP_IP), XDP_TX,
       frag_needed(sized(1443, dst=VIP_IP), 1500, VIP_OPT), PMTU, world="h1_vip", program="agent", ingress=LO),
    fx("agent_mtu_vip_frag_needed_full", "to a VIP, DF, the endpoint's full MTU (1450): next-hop MTU 1442",
       sized(1450, dst=VIP_IP), XDP_TX, frag_needed(sized(1450, dst=VIP_IP), 1500, VIP_OPT), PMTU,
       world="h1_vip", program="agent", ingress=LO),
    fx("agent_mtu_vip_no_df", "to a VIP, 1443 bytes without DF: dropped as any oversized datagram",
       sized(1443, dst=VIP_IP, flags=0), XDP_DROP, None, drop("agent_too_big"),
       world="h1_vip", program="agent", ingress=LO),
    fx("agent_mtu_vip_1400", "to a VIP over a 1400-byte NIC: 1343 with DF gets next-hop MTU 1342",
       sized(1343, dst=VIP_IP), XDP_TX, frag_needed(sized(1343, dst=VIP_IP), 1400, VIP_OPT), PMTU,
       world="h1_vip_1400", program="agent", ingress=LO),
    fx("agent_mtu_vip_self_bouncer", "to a VIP, the agent is the bouncer: the option is kept free before "
       "the function is offered the frame", sized(1443, src=7, dst=VIP_IP), XDP_TX,
       frag_needed(sized(1443, src=7, dst=VIP_IP), 1500, VIP_OPT), PMTU, program="agent", ingress=LO),
    fx("agent_mtu_vip_self_bouncer_fits", "to a VIP, the agent is the bouncer, 1442 bytes: on to the "
       "function's stage (empty here)", sized(1442, src=7, dst=VIP_IP), XDP_DROP, None,
       {"scaled": 1, "drop": 1, "scaled_no_fn": 1}, program="agent", ingress=LO),
]


# ------------------------------------------------------------------ agent: hardening (issue #8)
# Endpoint 10.0.0.5 on h1 (bouncer b, remote) and 10.0.0.7 on b (its own bouncer).

_M5, _M7 = ep_mac(100, 5), ep_mac(100, 7)
BCAST = "ff:ff:ff:ff:ff:ff"


def _arp(sha, spa, tpa, op=1, eth_src=None, eth_dst=BCAST, tha="00:00:00:00:00:00", **kw):
    """An ARP frame with every field chosen (kw: htype, ptype, hwlen, plen)."""
    return bytes(Ether(src=eth_src or sha, dst=eth_dst if op == 1 else tha)
                 / ARP(op=op, hwsrc=sha, psrc=spa, hwdst=tha, pdst=tpa, **kw))


def _h1(name, description, packet, verdict, output=None, counters=()):
    return fx(name, description, packet, verdict, output, counters, world="h1", program="agent", ingress=LO)


def _b(name, description, packet, verdict, output=None, counters=()):
    return fx(name, description, packet, verdict, output, counters, world="b", program="agent", ingress=LO)


def _udp5(dst="10.0.0.6", sport=40000, dport=7, dst_mac=GW_MAC, **ip_kw):
    return bytes(Ether(src=_M5, dst=dst_mac) / IP(src="10.0.0.5", dst=dst, **ip_kw)
                 / UDP(sport=sport, dport=dport) / Raw(b"mizar-transit-fixture"))


def _frag5(**ip_kw):
    """Part of one 10.0.0.5 -> 10.0.0.6 UDP datagram (id 4242)."""
    return bytes(Ether(src=_M5, dst=GW_MAC) / IP(src="10.0.0.5", dst="10.0.0.6", id=4242, proto=17, **ip_kw)
                 / Raw(b"\x9c\x40\x00\x07" + b"f" * 28))


def _tcp5(dport):
    return bytes(Ether(src=_M5, dst=GW_MAC) / IP(src="10.0.0.5", dst="10.0.0.6") / TCP(sport=40000, dport=dport))


ENCAP = {"redirect": 1, "agent_encap": 1}
ANSWER = {"tx": 1, "arp_reply": 1}

_probe_5_6 = _arp(_M5, "0.0.0.0", "10.0.0.6")
_probe_5_4 = _arp(_M5, "0.0.0.0", "10.0.0.4")
_probe_7_6 = _arp(_M7, "0.0.0.0", "10.0.0.6")
_tos_7_6 = P.inner_ipv4(_M7, GW_MAC, "10.0.0.7", "10.0.0.6", tos=0x2A)
_mcast_bcast = [
    ("agent_mcast_mdns", "IPv4 multicast (mDNS) never enters the overlay",
     _udp5("224.0.0.251", 5353, 5353, dst_mac="01:00:5e:00:00:fb")),
    ("agent_mcast_ip_only", "an IPv4 multicast destination under a unicast MAC", _udp5("239.1.2.3")),
    ("agent_bcast", "the limited broadcast 255.255.255.255", _udp5("255.255.255.255", dst_mac=BCAST)),
    ("agent_bcast_mac", "unicast IPv4 under the broadcast MAC (a subnet broadcast, or a confused stack)",
     _udp5("10.0.0.6", dst_mac=BCAST)),
    ("agent_mcast_mac", "unicast IPv4 under a multicast MAC", _udp5("10.0.0.4", dst_mac="01:00:5e:01:02:03")),
    ("agent_dhcp", "a DHCP discover: broadcast, counted as such rather than as a spoofed 0.0.0.0",
     P.dhcp_discover(_M5)),
]

AGENT_HARDENING = [
    _h1(name, desc + ": dropped at the agent", pkt, XDP_DROP, None, drop("agent_mcast"))
    for name, desc, pkt in _mcast_bcast
] + [
    # ARP validation, as the transit program validates it
    _h1("agent_arp_htype", "ARP with a hardware type other than Ethernet",
        _arp(_M5, "10.0.0.5", "10.0.0.6", hwtype=6), XDP_DROP, None, drop("agent_arp_bad")),
    _h1("agent_arp_ptype", "ARP for a protocol other than IPv4",
        _arp(_M5, "10.0.0.5", "10.0.0.6", ptype=0x86DD), XDP_DROP, None, drop("agent_arp_bad")),
    _h1("agent_arp_hlen", "ARP with 8-byte hardware addresses",
        _arp(_M5, "10.0.0.5", "10.0.0.6", hwlen=8), XDP_DROP, None, drop("agent_arp_bad")),
    _h1("agent_arp_plen", "ARP with 16-byte protocol addresses",
        _arp(_M5, "10.0.0.5", "10.0.0.6", plen=16), XDP_DROP, None, drop("agent_arp_bad")),
    _h1("agent_arp_truncated", "an ARP ethertype with a cut ARP body",
        _arp(_M5, "10.0.0.5", "10.0.0.6")[:30], XDP_DROP, None, drop("agent_trunc")),
    # the sender
    _h1("agent_arp_sender_bcast", "ARP whose sender MAC is broadcast",
        _arp(BCAST, "10.0.0.5", "10.0.0.6", eth_src=_M5), XDP_DROP, None, drop("arp_sender")),
    _h1("agent_arp_sender_mcast", "ARP whose sender MAC is multicast",
        _arp("01:00:5e:00:00:01", "10.0.0.5", "10.0.0.6", eth_src=_M5), XDP_DROP, None, drop("arp_sender")),
    _h1("agent_arp_sender_zero", "ARP whose sender MAC is all zero",
        _arp("00:00:00:00:00:00", "10.0.0.5", "10.0.0.6", eth_src=_M5), XDP_DROP, None, drop("arp_sender")),
    _h1("agent_arp_sender_mcast_ip", "ARP whose sender IP is multicast",
        _arp(_M5, "224.0.0.1", "10.0.0.6"), XDP_DROP, None, drop("arp_sender")),
    _h1("agent_arp_sender_bcast_ip", "ARP whose sender IP is 255.255.255.255",
        _arp(_M5, "255.255.255.255", "10.0.0.6"), XDP_DROP, None, drop("arp_sender")),
    _h1("agent_arp_spoof_mac", "ARP naming another MAC as the endpoint's (cache poisoning)",
        _arp("02:ee:64:00:00:63", "10.0.0.5", "10.0.0.6", eth_src=_M5), XDP_DROP, None, drop("agent_spoof")),
    _h1("agent_arp_spoof_ip", "ARP claiming another endpoint's address",
        _arp(_M5, "10.0.0.6", "10.0.0.4"), XDP_DROP, None, drop("agent_spoof")),
    _h1("agent_arp_reply_from_zero", "an ARP reply from 0.0.0.0 is no probe",
        _arp(_M5, "0.0.0.0", "10.0.0.6", op=2, tha=ep_mac(100, 6)), XDP_DROP, None, drop("agent_spoof")),
    # about the endpoint's own address
    _h1("agent_arp_gratuitous", "gratuitous ARP request (announcement): nobody in the overlay needs it, "
        "and it is not sent round to the endpoint's own host",
        _arp(_M5, "10.0.0.5", "10.0.0.5"), XDP_DROP, None, drop("arp_gratuitous")),
    _h1("agent_arp_gratuitous_reply", "gratuitous ARP reply",
        _arp(_M5, "10.0.0.5", "10.0.0.5", op=2, tha=BCAST), XDP_DROP, None, drop("arp_gratuitous")),
    _h1("agent_arp_probe_own", "RFC 5227 probe of the endpoint's own address: nobody else owns it, "
        "nobody answers", _arp(_M5, "0.0.0.0", "10.0.0.5"), XDP_DROP, None, drop("arp_gratuitous")),
    _b("agent_self_bouncer_arp_gratuitous", "gratuitous ARP on the bouncer host: dropped too",
       _arp(_M7, "10.0.0.7", "10.0.0.7"), XDP_DROP, None, drop("arp_gratuitous")),
    # RFC 5227 probes of other addresses
    _h1("agent_arp_probe", "RFC 5227 probe (sender 0.0.0.0) for another endpoint: to the bouncer, which "
        "answers as the owner", _probe_5_6, XDP_REDIRECT, agent_encap(_probe_5_6), ENCAP),
    _h1("agent_arp_probe_local", "probe for an endpoint on the same host: answered here as the owner "
        "would (its answer, to 0.0.0.0, could not be routed back)",
        _probe_5_4, XDP_TX, P.inner_arp_reply(ep_mac(100, 4), "10.0.0.4", _M5, "0.0.0.0"), ANSWER),
    _b("agent_self_bouncer_arp_probe", "probe when this host is the bouncer: answered with target 0.0.0.0",
       _probe_7_6, XDP_TX, P.inner_arp_reply(ep_mac(100, 6), "10.0.0.6", _M7, "0.0.0.0"), ANSWER),
    _h1("agent_arp_request_local", "an ARP request for a same-host endpoint goes to it unchanged",
        _arp(_M5, "10.0.0.5", "10.0.0.4"), XDP_REDIRECT, None, {"redirect": 1, "agent_local": 1}),
    # the outer source port: the inner 5-tuple
    _h1("agent_sport_udp_dport", "another UDP destination port of the same two endpoints: another outer port",
        _udp5(dport=53), XDP_REDIRECT, agent_encap(_udp5(dport=53)), ENCAP),
    _h1("agent_sport_udp_sport", "another UDP source port: another outer port",
        _udp5(sport=40001), XDP_REDIRECT, agent_encap(_udp5(sport=40001)), ENCAP),
    _h1("agent_sport_tcp_80", "TCP: the ports count", _tcp5(80), XDP_REDIRECT, agent_encap(_tcp5(80)), ENCAP),
    _h1("agent_sport_tcp_443", "TCP to another port", _tcp5(443), XDP_REDIRECT, agent_encap(_tcp5(443)), ENCAP),
    _h1("agent_sport_ip_options", "the ports are read after the IPv4 options",
        _udp5(options=b"\x01\x01\x01\x00"), XDP_REDIRECT, agent_encap(_udp5(options=b"\x01\x01\x01\x00")),
        ENCAP),
    _h1("agent_sport_icmp", "no ports: addresses and protocol", P.ping(_M5, GW_MAC, "10.0.0.5", "10.0.0.6"),
        XDP_REDIRECT, agent_encap(P.ping(_M5, GW_MAC, "10.0.0.5", "10.0.0.6")), ENCAP),
    _h1("agent_sport_frag_first", "first fragment (MF): addresses and protocol, not the ports it carries",
        _frag5(flags="MF"), XDP_REDIRECT, agent_encap(_frag5(flags="MF")), ENCAP),
    _h1("agent_sport_frag_last", "last fragment (offset) of the same datagram: the same outer port",
        _frag5(frag=4), XDP_REDIRECT, agent_encap(_frag5(frag=4)), ENCAP),
    # DSCP and ECN (RFC 6040 normal mode)
    _h1("agent_tos_ef_ect0", "DSCP EF and ECT(0) copied to the outer header",
        _udp5(tos=0xBA), XDP_REDIRECT, agent_encap(_udp5(tos=0xBA)), ENCAP),
    _h1("agent_tos_ce", "CE copied to the outer header (RFC 6040 normal mode)",
        _udp5(tos=0x23), XDP_REDIRECT, agent_encap(_udp5(tos=0x23)), ENCAP),
    _b("agent_self_bouncer_tos", "the bouncer host's own encapsulation copies DSCP and ECN too",
       _tos_7_6, XDP_REDIRECT, agent_encap(P.with_dst_mac(_tos_7_6, ep_mac(100, 6)), dst_host="h2", src_host="b"),
       dict(ENCAP, bounce=1)),
    # stages on the bouncer host
    _b("agent_self_bouncer_scaled", "scaled endpoint met as bouncer: ON_XDP_SCALED_EP with the plain frame, "
       "dropped when it is empty", P.inner_ipv4(_M7, GW_MAC, "10.0.0.7", "10.0.0.9"), XDP_DROP, None,
       {"scaled": 1, "drop": 1, "scaled_no_fn": 1}),
]

# ------------------------------------------------------------------ VPC peering (issue #10)
# World "p": b divides VPC 100 (blue, 10.0.0.0/16), which is peered with VPC
# 400 (red, 10.4.0.0/16, dividers h4 and h5) and VPC 500 (green, 10.5.0.0/24,
# divider h6): one peer route each. b also divides VPC 200, which reuses
# red's 10.4.0.0/16 and is peered with nobody. b is the bouncer of blue's
# 10.0.0.0/24 too, where its endpoint 10.0.0.7 (agent on lo) lives.

WORLD_P = {
    "if_cfg": {"ip": ip("b"), "mac": mac("b"), "ifindex": 2},
    "endpoints": [ep(100, 1, type="gateway", mac=GW_MAC), ep(100, 5, host_ip=ip("h1")), ep(100, 7, ifindex=7)],
    "networks": [
        {"vni": 100, "cidr": "10.0.0.0/24", "bouncers": [], "local_bouncer": True},
        {"vni": 100, "cidr": "10.0.1.0/24", "bouncers": [ip("h2")], "local_bouncer": False},
        {"vni": 200, "cidr": "10.4.2.0/24", "bouncers": [ip("h2")], "local_bouncer": False},
    ],
    "vpcs": [
        {"vni": 100, "dividers": [ip("b")], "local_divider": True},
        {"vni": 200, "dividers": [ip("b")], "local_divider": True},
    ],
    "peers": [
        {"vni": 100, "cidr": "10.4.0.0/16", "peer_vni": 400, "dividers": [ip("h4"), ip("h5")],
         "src_cidr": "10.0.0.0/16"},
        {"vni": 100, "cidr": "10.5.0.0/24", "peer_vni": 500, "dividers": [ip("h6")], "src_cidr": "10.0.0.0/16"},
    ],
    "substrate": substrate("h1", "h2", "h4", "h5", "h6"),
    "agents": [{"ifindex": LO, "vni": 100, "ip": "10.0.0.7", "mac": ep_mac(100, 7), "bouncers": [ip("b")]}],
    "sources": SOURCES,
}
# World b with peer routes on its VPC 300 (b divides it): the paths that do
# not cross (a known network, no_network) must not change, nor cost more
# than the one lookup the no_network path now makes.
WORLD_B_PEERED = dict(WORLD_B, peers=[
    {"vni": 300, "cidr": "10.9.0.0/16", "peer_vni": 400, "dividers": [ip("h6")], "src_cidr": "10.3.0.0/16"}])
WORLDS.update(p=WORLD_P, b_peered=WORLD_B_PEERED)
TX_TO_PEER = {"tx": 1, "to_peer": 1}
_RED = [ip("h4"), ip("h5")]


def _p(name, description, packet, verdict, output=None, counters=(), **kw):
    return fx(name, description, packet, verdict, output, counters, world="p", **kw)


def crossed(inner, vni, hops, src, dst, ttl=64, **kw):
    """What a divider sends on for a packet that crosses a peering: the
    packet as it came (from h1, TTL ttl), with the peer's VNI, to the peer's
    divider the flow hash picks."""
    return divided(enc(inner, vni=vni, ttl=ttl, **kw), hops, src, dst, ttl=ttl - 1)


_pin = v4(5, "10.4.1.5")
_pin_green = v4(5, "10.5.0.9")
_parp = P.inner_arp_request(ep_mac(100, 5), "10.0.0.5", "10.4.1.5")
_pspoof = P.inner_ipv4(ep_mac(100, 5), GW_MAC, "10.9.0.5", "10.4.1.5")
_pspoof_red = P.inner_ipv4(ep_mac(100, 5), GW_MAC, "10.4.7.7", "10.4.1.5")
_p200 = P.inner_ipv4(ep_mac(200, 9), GW_MAC, "10.4.2.9", "10.0.0.5")
_pa_7 = P.inner_ipv4(ep_mac(100, 7), GW_MAC, "10.0.0.7", "10.4.1.5")

PEERING = [
    fx("divider_peer_routes", "a divider whose VPC has peer routes: a known network is divided as before",
       enc(_div_in, vni=300), XDP_TX,
       divided(enc(_div_in, vni=300), [ip("h4"), ip("h5")], "10.3.1.9", "10.3.0.77"), TX_DIVIDE, world="b_peered"),
    fx("divider_no_network_peer_routes", "a divider whose VPC has peer routes, none for the address: no_network",
       enc(P.inner_ipv4(ep_mac(300, 9), GW_MAC, "10.3.1.9", "10.3.9.9"), vni=300), XDP_DROP, None,
       drop("no_network"), world="b_peered"),
    _p("peer", "a divider, the destination in no network of its VPC but in a peered VPC's CIDR: to the peer's "
       "divider the flow hash picks, the VNI rewritten to the peer's, TTL-1",
       enc(_pin), XDP_TX, crossed(_pin, 400, _RED, "10.0.0.5", "10.4.1.5"), TX_TO_PEER),
    _p("peer_second_route", "a second peered VPC, with a /24 CIDR: its own VNI and divider",
       enc(_pin_green), XDP_TX, crossed(_pin_green, 500, [ip("h6")], "10.0.0.5", "10.5.0.9"), TX_TO_PEER),
    _p("peer_options", "Geneve options are carried unchanged across the peering",
       enc(_pin, options=_opt), XDP_TX, crossed(_pin, 400, _RED, "10.0.0.5", "10.4.1.5", options=_opt), TX_TO_PEER),
    _p("peer_ttl2", "TTL 2 still crosses, with TTL 1", enc(_pin, ttl=2), XDP_TX,
       crossed(_pin, 400, _RED, "10.0.0.5", "10.4.1.5", ttl=2), TX_TO_PEER),
    _p("peer_ttl1", "TTL 1 would expire at the peer's divider", enc(_pin, ttl=1), XDP_DROP, None, drop("ttl")),
    _p("peer_own_network_first", "a network of the VPC is routed as before: no VNI rewrite",
       enc(v4(5, "10.0.1.9")), XDP_TX, bounced(enc(v4(5, "10.0.1.9")), "h2"), TX_DIVIDE),
    _p("peer_no_route", "in no network and no peered VPC: no_network, as without peerings",
       enc(v4(5, "10.6.0.1")), XDP_DROP, None, drop("no_network")),
    _p("peer_outside_route", "next to a /24 peer route but outside it: no_network",
       enc(v4(5, "10.5.1.9")), XDP_DROP, None, drop("no_network")),
    _p("peer_src_outside", "the inner source is outside the sending VPC's CIDR (a tunnel peer speaking for "
       "another address): it does not cross", enc(_pspoof), XDP_DROP, None, drop("peer_src")),
    _p("peer_src_of_the_peer", "the inner source is an address of the peer VPC itself: it does not cross",
       enc(_pspoof_red), XDP_DROP, None, drop("peer_src")),
    _p("peer_arp", "ARP for an address of a peered VPC never crosses", enc(_parp), XDP_DROP, None,
       drop("peer_arp")),
    _p("peer_unpeered_vpc", "VPC 200 reuses red's CIDR and is peered with nobody: its traffic for blue's "
       "addresses goes nowhere", enc(_p200, vni=200), XDP_DROP, None, drop("no_network")),
    _p("peer_untrusted_source", "a tunnel peer of VNI 100 (trusted for that VNI only) may not send with the "
       "peer's VNI", from_addr(_pin, PEER[0], PEER[1], vni=400), XDP_DROP, None, drop("untrusted_src")),
    _p("peer_agent_self_divider", "the agent's host is the bouncer and the divider: it encapsulates with the "
       "peer's VNI straight to the peer's divider", _pa_7, XDP_REDIRECT,
       agent_encap(_pa_7, "10.0.0.7", "10.4.1.5", vni=400, src_host="b",
                   dst_host=host_of(pick(_RED, "10.0.0.7", "10.4.1.5"))),
       {"redirect": 1, "agent_encap": 1, "to_peer": 1}, program="agent", ingress=LO),
]

ALL = (FORWARDING + ISOLATION + MALFORMED + SECURITY + TUNNEL_SRC + ECN + HOST_SAFETY + AGENT + AGENT_MTU
       + AGENT_HARDENING + PEERING)
BY_NAME = dict((f.name, f) for f in ALL)
assert len(BY_NAME) == len(ALL), "fixture names must be unique"


def abi_stages():
    return list(abi.STAGES)
