"""Packet builders for datapath fixtures: scapy for the layers scapy knows,
explicit bytes for the Geneve header so that malformed ones can be built."""
import struct

from scapy.layers.inet import IP, TCP, UDP, ICMP
from scapy.layers.inet6 import IPv6, ICMPv6ND_NS
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Raw

GENEVE_PORT = 6081
ETH_BRIDGING = 0x6558


def geneve_header(vni, options=b"", version=0, proto=ETH_BRIDGING, optlen=None):
    """Geneve fixed header plus options; optlen (in 4-byte words) defaults to
    the options' real length."""
    words = len(options) // 4 if optlen is None else optlen
    return struct.pack("!BBH", (version << 6) | words, 0, proto) + vni.to_bytes(3, "big") + b"\0" + options


def geneve_option(klass=0x0102, typ=0x01, data=b"\0\0\0\0"):
    """One option TLV; data must be a multiple of 4 bytes."""
    return struct.pack("!HBB", klass, typ, len(data) // 4) + data


def outer(src_mac, dst_mac, src_ip, dst_ip, geneve, ttl=64, sport=50000, ip_id=7, flags="DF",
          udp_chksum=0, tos=0):
    """Ether/IP/UDP around raw Geneve bytes (header, options, inner frame)."""
    return bytes(
        Ether(src=src_mac, dst=dst_mac)
        / IP(src=src_ip, dst=dst_ip, ttl=ttl, id=ip_id, flags=flags, tos=tos)
        / UDP(sport=sport, dport=GENEVE_PORT, chksum=udp_chksum)
        / Raw(geneve)
    )


def inner_ipv4(src_mac, dst_mac, src, dst, payload=b"mizar-transit-fixture", proto="udp", **ip_kw):
    l4 = UDP(sport=40000, dport=7) if proto == "udp" else TCP(sport=40000, dport=80, flags="S")
    return bytes(Ether(src=src_mac, dst=dst_mac) / IP(src=src, dst=dst, **ip_kw) / l4 / Raw(payload))


def inner_arp_request(src_mac, src_ip, target_ip):
    return bytes(Ether(src=src_mac, dst="ff:ff:ff:ff:ff:ff")
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
