"""Packet builders for the tests that run packets through the BPF programs
(tests/datapath fixtures, tests/kernel): scapy for the layers scapy knows,
explicit bytes for the Geneve header so that malformed ones can be built.

(tests/datapath/fuzz.py builds its packets from bytes on its own: its oracle
must not share code with what it judges.)"""
import struct

from scapy.layers.inet import IP, TCP, UDP, ICMP
from scapy.layers.inet6 import IPv6, ICMPv6ND_NS
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Raw

XDP_ABORTED, XDP_DROP, XDP_PASS, XDP_TX, XDP_REDIRECT = range(5)
GENEVE_PORT = 6081
ETH_BRIDGING = 0x6558


def geneve_header(vni, options=b"", version=0, proto=ETH_BRIDGING, optlen=None, flags=0):
    """Geneve fixed header plus options; optlen (in 4-byte words) defaults to
    the options' real length. flags: 0x80 O (control), 0x40 C (critical)."""
    words = len(options) // 4 if optlen is None else optlen
    return struct.pack("!BBH", (version << 6) | words, flags, proto) + vni.to_bytes(3, "big") + b"\0" + options


def geneve_option(klass=0x0102, typ=0x01, data=b"\0\0\0\0"):
    """One option TLV; data must be a multiple of 4 bytes."""
    return struct.pack("!HBB", klass, typ, len(data) // 4) + data


def outer(src_mac, dst_mac, src_ip, dst_ip, geneve, ttl=64, sport=50000, ip_id=7, flags="DF",
          udp_chksum=0, tos=0, ip_options=None):
    """Ether/IP/UDP around raw Geneve bytes (header, options, inner frame)."""
    ip_kw = {"options": ip_options} if ip_options else {}
    return bytes(
        Ether(src=src_mac, dst=dst_mac)
        / IP(src=src_ip, dst=dst_ip, ttl=ttl, id=ip_id, flags=flags, tos=tos, **ip_kw)
        / UDP(sport=sport, dport=GENEVE_PORT, chksum=udp_chksum)
        / Raw(geneve)
    )


def with_outer_lengths(pkt, tot_len=None, udp_len=None):
    """An outer Ether/IPv4/UDP packet whose IPv4 total length and UDP length
    say tot_len and udp_len (default: what the bytes really are), with a
    correct IPv4 header checksum: cut packets that do not lie about it, or
    packets that lie about nothing else."""
    b = bytearray(pkt)
    ihl = (b[14] & 0x0f) * 4
    tot = len(b) - 14 if tot_len is None else tot_len
    b[16:18] = tot.to_bytes(2, "big")
    if len(b) >= 14 + ihl + 6:
        udp = len(b) - 14 - ihl if udp_len is None else udp_len
        b[14 + ihl + 4:14 + ihl + 6] = udp.to_bytes(2, "big")
    b[24:26] = b"\0\0"
    b[24:26] = ipv4_checksum(bytes(b[14:14 + ihl])).to_bytes(2, "big")
    return bytes(b)


def ipv4_checksum(header):
    total = sum(int.from_bytes(header[i:i + 2], "big") for i in range(0, len(header), 2))
    while total >> 16:
        total = (total & 0xffff) + (total >> 16)
    return ~total & 0xffff


def inner_ipv4(src_mac, dst_mac, src, dst, payload=b"mizar-transit-fixture", proto="udp", **ip_kw):
    l4 = UDP(sport=40000, dport=7) if proto == "udp" else TCP(sport=40000, dport=80, flags="S")
    return bytes(Ether(src=src_mac, dst=dst_mac) / IP(src=src, dst=dst, **ip_kw) / l4 / Raw(payload))


def inner_arp_request(src_mac, src_ip, target_ip, eth_src=None):
    return bytes(Ether(src=eth_src or src_mac, dst="ff:ff:ff:ff:ff:ff")
                 / ARP(op=1, hwsrc=src_mac, psrc=src_ip, hwdst="00:00:00:00:00:00", pdst=target_ip))


def inner_arp_reply(src_mac, src_ip, dst_mac, dst_ip):
    return bytes(Ether(src=src_mac, dst=dst_mac) / ARP(op=2, hwsrc=src_mac, psrc=src_ip, hwdst=dst_mac, pdst=dst_ip))


def ssh_syn(src_mac, dst_mac, src, dst):
    return bytes(Ether(src=src_mac, dst=dst_mac) / IP(src=src, dst=dst) / TCP(sport=51515, dport=22, flags="S"))


def arp_for_host(src_mac, src_ip, host_ip):
    return bytes(Ether(src=src_mac, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=src_mac, psrc=src_ip, pdst=host_ip))


def dhcp_discover(src_mac):
    return bytes(Ether(src=src_mac, dst="ff:ff:ff:ff:ff:ff") / IP(src="0.0.0.0", dst="255.255.255.255")
                 / UDP(sport=68, dport=67) / Raw(b"\x01\x01\x06\x00" + b"\0" * 232))


def ipv6_nd(src_mac):
    return bytes(Ether(src=src_mac, dst="33:33:ff:00:00:01") / IPv6(src="fe80::1", dst="ff02::1:ff00:1")
                 / ICMPv6ND_NS(tgt="fe80::2"))


def ping(src_mac, dst_mac, src, dst):
    return bytes(Ether(src=src_mac, dst=dst_mac) / IP(src=src, dst=dst) / ICMP() / Raw(b"x" * 32))


def udp_to(src_mac, dst_mac, src, dst, dport):
    return bytes(Ether(src=src_mac, dst=dst_mac) / IP(src=src, dst=dst) / UDP(sport=5353, dport=dport) / Raw(b"q" * 20))


def retarget(pkt, src_mac, dst_mac, src_ip, dst_ip, ttl):
    """What a bouncer's rewrite of an encapsulated packet must give: new
    MACs, IPs and TTL, a checksum scapy computes independently, UDP
    checksum zero, everything from the Geneve header on unchanged."""
    p = Ether(pkt)
    p[Ether].src, p[Ether].dst = src_mac, dst_mac
    p[IP].src, p[IP].dst, p[IP].ttl = src_ip, dst_ip, ttl
    del p[IP].chksum
    p[UDP].chksum = 0
    return bytes(p)


def with_inner_dst_mac(pkt, mac):
    """An encapsulated packet whose inner frame is addressed to mac (after the
    outer headers, the Geneve header and its options)."""
    p = Ether(pkt)
    geneve = bytes(p[UDP].payload)
    start = 8 + (geneve[0] & 0x3f) * 4
    inner = with_dst_mac(geneve[start:], mac)
    p[UDP].remove_payload()
    p[UDP].add_payload(Raw(geneve[:start] + inner))
    return bytes(p)


def with_dst_mac(frame, mac):
    p = Ether(frame)
    p[Ether].dst = mac
    return bytes(p)


# ------------------------------------------------------------------ tests/kernel: programs attached to veths

def plain_udp(dst="10.9.9.9"):
    """Not Geneve: the transit program hands it to the host (pass path)."""
    return bytes(Ether(src="02:00:00:00:00:aa", dst="02:00:00:00:00:01") / IP(src="10.9.9.8", dst=dst) /
                 UDP(sport=1234, dport=5678) / (b"x" * 32))


def geneve_bad_version(host_ip, port=GENEVE_PORT, src="192.168.77.9"):
    """Geneve to host_ip with version 1: dropped (drop path)."""
    return bytes(Ether(src="02:00:00:00:00:aa", dst="02:00:00:00:00:01") / IP(src=src, dst=host_ip) /
                 UDP(sport=40000, dport=port) / geneve_header(1000, version=1) / (b"\0" * 64))


def geneve_icmp(src_host, dst_host, dst_mac, vni, inner_src, inner_dst):
    """An ICMP echo from inner_src to inner_dst, tunnelled from src_host to dst_host."""
    inner = Ether(src="02:0a:00:00:00:aa", dst="02:0a:00:00:00:bb") / IP(src=inner_src, dst=inner_dst) / ICMP()
    return bytes(Ether(src="02:00:00:00:00:aa", dst=dst_mac) / IP(src=src_host, dst=dst_host) /
                 UDP(sport=40000, dport=GENEVE_PORT) / geneve_header(vni) / bytes(inner))
