"""The flowlog function's frame checks and builders, on exact bytes: what it
delivers, what it drops and under which reason, what it logs. No root: the
socket side is tested end to end in tests/integration/test_flowlog.py."""
import json
import struct

import pytest

from ansible_collections.mizar.transit.plugins.module_utils.userspace import flowlog as fl

VNI = 300
EP_IP, EP_MAC = "10.9.1.20", "02:aa:bb:cc:dd:01"
PEER_IP, PEER_MAC = "10.9.1.10", "02:aa:bb:cc:dd:02"
HOST_SRC, HOST_DST = "192.168.79.1", "192.168.79.2"
HOST_SRC_MAC, HOST_DST_MAC = "02:00:c0:a8:4f:01", "02:00:c0:a8:4f:02"
IP4, MAC6 = fl.socket.inet_aton(EP_IP), fl.mac_bytes(EP_MAC)


def udp_inner(payload=b"hello", sport=40000, dport=7000, dst=EP_IP):
    return fl.ethernet(EP_MAC, PEER_MAC, fl.ETH_P_IP,
                       fl.ipv4(PEER_IP, dst, 17, fl.udp(sport, dport, payload, PEER_IP, dst), ident=7))


def frame(inner=None, vni=VNI, **kw):
    return fl.tunnel_frame(udp_inner() if inner is None else inner, vni, HOST_SRC, HOST_DST, HOST_SRC_MAC,
                           HOST_DST_MAC, **kw)


def parse(data):
    return fl.parse_tunnel(data, VNI, IP4, MAC6)


def reason(data):
    with pytest.raises(fl.Drop) as e:
        parse(data)
    return e.value.reason


def test_checksum_is_rfc1071():
    # RFC 1071's example words 0001 f203 f4f5 f6f7 sum to ddf2; the checksum is its complement
    assert fl.ones_sum(bytes.fromhex("0001f203f4f5f6f7")) == 0xddf2
    assert fl.checksum(bytes.fromhex("0001f203f4f5f6f7")) == 0x220d
    assert fl.ones_sum(b"\x01") == 0x0100  # odd length: padded with a zero byte


def test_the_builders_make_these_exact_bytes():
    inner = udp_inner(b"hi")
    assert inner.hex() == (
        "02aabbccdd01" "02aabbccdd02" "0800"
        "4500001e" "00070000" "4011" "6499" "0a09010a" "0a090114"   # IPv4, checksum 0x6499
        "9c401b58" "000a" "c9a8" "6869")                           # UDP 40000 -> 7000, checksum 0xc9a8
    whole = frame(inner, options=[(0x0102, 0x03, b"\x00\x00\x00\x2a")])
    assert whole.hex() == (
        "0200c0a84f02" "0200c0a84f01" "0800"
        "45000058" "00000000" "4011" "5b41" "c0a84f01" "c0a84f02"   # outer IPv4 to the endpoint's host
        "c00017c1" "0044" "0000"                                   # UDP 49152 -> 6081, no checksum
        "02006558" "00012c00"                                      # Geneve: 2 words of options, VNI 300
        "01020301" "0000002a"                                      # option class 0x0102 type 3, 4 bytes
        + inner.hex())
    assert fl.arp(1, PEER_MAC, PEER_IP, "00:00:00:00:00:00", EP_IP).hex() == (
        "0001080006040001" "02aabbccdd02" "0a09010a" "000000000000" "0a090114")


def test_a_good_frame_is_delivered_as_its_inner_frame_with_its_flow():
    inner = udp_inner(b"x" * 100)
    tun = parse(frame(inner, options=[(0x0102, 0x03, b"\x00\x00\x00\x2a")]))
    assert tun.inner == inner
    assert (tun.vni, tun.outer_src, tun.outer_dst, tun.kind) == (VNI, HOST_SRC, HOST_DST, "ipv4")
    assert tun.flow == (17, PEER_IP, EP_IP, 40000, 7000)
    assert tun.length == 20 + 8 + 100
    assert tun.options == [(0x0102, 0x03, b"\x00\x00\x00\x2a")]


def test_ethernet_padding_is_not_delivered():
    inner = udp_inner(b"")  # 42 bytes: a sender pads it to 60
    assert parse(frame(inner + b"\0" * 18)).inner == inner


def test_a_full_size_packet_passes():
    # a 1500-byte NIC: 1450 bytes of inner IPv4 make a 1514-byte tunnel frame
    inner = udp_inner(b"z" * (1450 - 28))
    whole = frame(inner)
    assert len(whole) == 1514
    tun = parse(whole)
    assert tun.length == 1450 and tun.inner == inner


def test_tcp_and_icmp_flows():
    syn = struct.pack("!HHIIBBHHH", 51000, 80, 1, 0, 5 << 4, 0x02, 64240, 0, 0)
    tcp = fl.ethernet(EP_MAC, PEER_MAC, fl.ETH_P_IP, fl.ipv4(PEER_IP, EP_IP, 6, syn))
    assert parse(frame(tcp)).flow == (6, PEER_IP, EP_IP, 51000, 80)
    echo = fl.ethernet(EP_MAC, PEER_MAC, fl.ETH_P_IP, fl.ipv4(PEER_IP, EP_IP, 1, b"\x08\x00\x00\x00\x00\x01\x00\x01"))
    assert parse(frame(echo)).flow == (1, PEER_IP, EP_IP, 0, 0x0800)  # type 8, code 0
    later = fl.ethernet(EP_MAC, PEER_MAC, fl.ETH_P_IP, fl.ipv4(PEER_IP, EP_IP, 17, b"abcd", frag=185))
    assert parse(frame(later)).flow == (17, PEER_IP, EP_IP, 0, 0)  # a later fragment: no ports


def test_arp_for_the_endpoint_is_delivered_and_any_other_dropped():
    req = fl.ethernet("ff:ff:ff:ff:ff:ff", PEER_MAC, fl.ETH_P_ARP,
                      fl.arp(1, PEER_MAC, PEER_IP, "00:00:00:00:00:00", EP_IP))
    tun = parse(frame(req + b"\0" * 18))
    assert (tun.kind, tun.inner, tun.flow) == ("arp", req, None)
    other = fl.ethernet("ff:ff:ff:ff:ff:ff", PEER_MAC, fl.ETH_P_ARP,
                        fl.arp(1, PEER_MAC, PEER_IP, "00:00:00:00:00:00", "10.9.1.99"))
    assert reason(frame(other)) == "arp_target"
    bad = bytearray(req)
    bad[14 + 4] = 16  # hardware address length 16
    assert reason(frame(bytes(bad))) == "arp_malformed"


def _patch(data, offset, value):
    out = bytearray(data)
    out[offset:offset + len(value)] = value
    return bytes(out)


def _outer_fix(data):
    """The outer IPv4 header's checksum recomputed after a patch."""
    out = bytearray(data)
    out[24:26] = b"\0\0"
    out[24:26] = struct.pack("!H", fl.checksum(bytes(out[14:34])))
    return bytes(out)


def _inner_fix(data, at):
    out = bytearray(data)
    out[at + 10:at + 12] = b"\0\0"
    out[at + 10:at + 12] = struct.pack("!H", fl.checksum(bytes(out[at:at + 20])))
    return bytes(out)


GOOD = frame()
INNER_IP = 14 + 20 + 8 + 8 + 14  # where the inner IPv4 header starts in GOOD


@pytest.mark.parametrize("name,data,why", [
    ("runt", GOOD[:49], "outer_short"),
    ("IPv6 outer", _patch(GOOD, 12, b"\x86\xdd"), "outer_not_ipv4"),
    ("IPv4 version 6", _outer_fix(_patch(GOOD, 14, b"\x65")), "outer_ip_header"),
    ("header length 4 words", _outer_fix(_patch(GOOD, 14, b"\x44")), "outer_ip_header"),
    ("outer checksum", _patch(GOOD, 24, b"\xde\xad"), "outer_ip_checksum"),
    ("total length beyond the frame", _outer_fix(_patch(GOOD, 16, struct.pack("!H", len(GOOD)))), "outer_ip_length"),
    ("total length short of the headers", _outer_fix(_patch(GOOD, 16, struct.pack("!H", 30))), "outer_ip_length"),
    ("more fragments", _outer_fix(_patch(GOOD, 20, b"\x20\x00")), "outer_fragment"),
    ("TCP outer", _outer_fix(_patch(GOOD, 23, b"\x06")), "outer_not_udp"),
    ("UDP to 4789", _patch(GOOD, 36, struct.pack("!H", 4789)), "outer_not_geneve"),
    ("UDP length", _patch(GOOD, 38, struct.pack("!H", 30)), "udp_length"),
    ("UDP checksum", _patch(GOOD, 40, b"\x12\x34"), "udp_checksum"),
    ("Geneve version 1", _patch(GOOD, 42, b"\x40"), "geneve_version"),
    ("O bit", _patch(GOOD, 43, b"\x80"), "geneve_control"),
    ("C bit", _patch(GOOD, 43, b"\x40"), "geneve_critical"),
    ("critical option", frame(options=[(0x0102, 0x83, b"\0\0\0\0")], critical=False), "geneve_critical"),
    ("option overruns", _patch(frame(options=[(0x0102, 3, b"\0\0\0\0")]), 53, b"\x02"), "geneve_options"),
    ("options beyond the packet", _patch(GOOD, 42, b"\x3f"), "geneve_options"),
    ("IPv4 payload", frame(protocol=0x0800), "geneve_protocol"),
    ("another tenant's VNI", frame(vni=200), "vni"),
    ("inner runt", frame(b"\x02" * 10), "inner_short"),
    ("inner to another MAC", _patch(GOOD, 50, b"\x02\x00\x00\x00\x00\x09"), "inner_mac"),
    ("inner IPv6", _patch(GOOD, 62, b"\x86\xdd"), "inner_ethertype"),
    ("inner header length", _inner_fix(_patch(GOOD, INNER_IP, b"\x44"), INNER_IP), "inner_ip_header"),
    ("inner checksum", _patch(GOOD, INNER_IP + 10, b"\xbe\xef"), "inner_ip_checksum"),
    ("inner total length", _inner_fix(_patch(GOOD, INNER_IP + 2, b"\x05\xdc"), INNER_IP), "inner_ip_length"),
    ("inner to another address", frame(udp_inner(dst="10.9.1.99")), "inner_dst"),
    ("UDP length beyond the packet", _patch(GOOD, INNER_IP + 24, b"\x01\x00"), "inner_l4"),
    ("TCP header cut short", frame(fl.ethernet(EP_MAC, PEER_MAC, fl.ETH_P_IP, fl.ipv4(PEER_IP, EP_IP, 6, b"\0" * 12))),
     "inner_l4"),
])
def test_hostile_frames_are_dropped_by_reason(name, data, why):
    assert why in fl.DROP_REASONS
    assert reason(data) == why, name


def test_every_truncation_of_a_good_frame_is_dropped():
    for n in range(len(GOOD)):
        with pytest.raises(fl.Drop):
            parse(GOOD[:n])


class FakeFlowlog(fl.Flowlog):
    """The function's frame handling, delivering into a list."""

    def __init__(self, log):
        super(FakeFlowlog, self).__init__({"name": "fl1", "vni": VNI, "ip": EP_IP, "mac": EP_MAC, "log": log,
                                           "flush": 1, "host_iface": "mz1"})
        self.delivered = []
        self.out = self

    def send(self, data):
        self.delivered.append(data)
        return len(data)


def test_flows_and_counters_go_to_the_log(tmp_path):
    log = str(tmp_path / "flows.jsonl")
    f = FakeFlowlog(log)
    for i in range(3):
        f.handle(frame(udp_inner(b"a" * 10)), fl.PACKET_OTHERHOST, 100.0 + i)
    f.handle(frame(vni=200), fl.PACKET_OTHERHOST, 103.0)           # another tenant's: dropped
    f.handle(udp_inner(), fl.PACKET_HOST, 103.0)                   # the stack's own: not looked at
    f.handle(frame(), fl.PACKET_OUTGOING, 103.0)                   # what the endpoint sends: not looked at
    f.flush(104.0)
    f.handle(frame(udp_inner(b"a" * 10)), fl.PACKET_OTHERHOST, 105.0)
    f.flush(106.0)
    f.flush(107.0)  # nothing new: counters only
    lines = [json.loads(x) for x in open(log)]
    assert [x["type"] for x in lines] == ["flow", "counters", "flow", "counters", "counters"]
    assert lines[0] == {"type": "flow", "function": "fl1", "vni": VNI, "outer_src": HOST_SRC, "proto": "udp",
                        "src": PEER_IP, "dst": EP_IP, "sport": 40000, "dport": 7000, "packets": 3, "bytes": 3 * 38,
                        "first": 100.0, "last": 102.0, "options": []}
    assert lines[2]["packets"] == 4 and lines[2]["last"] == 105.0 and lines[2]["first"] == 100.0
    assert lines[1] == {"type": "counters", "function": "fl1", "time": 104.0, "frames": 4, "delivered": 3, "arp": 0,
                        "log_errors": 0, "drops": {"vni": 1}}
    assert lines[4]["delivered"] == 4
    assert f.delivered == [udp_inner(b"a" * 10)] * 4
