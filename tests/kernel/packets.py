"""Packets for the kernel tests, built with scapy."""
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.l2 import Ether

XDP_ABORTED, XDP_DROP, XDP_PASS, XDP_TX, XDP_REDIRECT = 0, 1, 2, 3, 4
GENEVE_PORT = 6081
ETH_P_TEB = 0x6558


def geneve(vni, version=0):
    """A Geneve header with no options carrying an Ethernet frame."""
    return bytes([version << 6, 0, ETH_P_TEB >> 8, ETH_P_TEB & 0xff,
                  (vni >> 16) & 0xff, (vni >> 8) & 0xff, vni & 0xff, 0])


def plain_udp(dst="10.9.9.9"):
    """Not Geneve: the transit program hands it to the host (pass path)."""
    return bytes(Ether(src="02:00:00:00:00:aa", dst="02:00:00:00:00:01") / IP(src="10.9.9.8", dst=dst) /
                 UDP(sport=1234, dport=5678) / (b"x" * 32))


def geneve_bad_version(host_ip, port=GENEVE_PORT, src="192.168.77.9"):
    """Geneve to host_ip with version 1: dropped (drop path)."""
    return bytes(Ether(src="02:00:00:00:00:aa", dst="02:00:00:00:00:01") / IP(src=src, dst=host_ip) /
                 UDP(sport=40000, dport=port) / geneve(1000, version=1) / (b"\0" * 64))


def geneve_icmp(src_host, dst_host, dst_mac, vni, inner_src, inner_dst):
    """An ICMP echo from inner_src to inner_dst, tunnelled from src_host to dst_host."""
    inner = Ether(src="02:0a:00:00:00:aa", dst="02:0a:00:00:00:bb") / IP(src=inner_src, dst=inner_dst) / ICMP()
    return bytes(Ether(src="02:00:00:00:00:aa", dst=dst_mac) / IP(src=src_host, dst=dst_host) /
                 UDP(sport=40000, dport=GENEVE_PORT) / geneve(vni) / bytes(inner))
