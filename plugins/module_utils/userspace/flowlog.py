# -*- coding: utf-8 -*-
# Copyright: mizar.transit contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""flowlog: a user-space network function behind a bypass-decap endpoint.

It runs in the endpoint's network namespace, standard library only, as

    python3 flowlog.py /var/lib/mizar/functions/<name>.json

and does three things with every frame the transit program bypasses to the
endpoint (the whole Geneve packet, on the endpoint's eth0):

- checks it as if the wire were hostile: outer Ethernet, IPv4 (header
  checksum, lengths, no fragment), UDP to 6081 (length, checksum when not
  zero), Geneve (version 0, no control payload, no critical option,
  options that fit exactly, Ethernet payload, the endpoint's own VNI), the
  inner Ethernet frame (the endpoint's MAC, or broadcast ARP), inner IPv4
  (header checksum, lengths, the endpoint's address, transport header
  present) or ARP (for the endpoint's address). A frame that fails is
  dropped and counted under its reason (DROP_REASONS), never delivered;
- records the flow: VNI, outer source (the host or bouncer that sent it),
  the Geneve options, the inner 5-tuple (ICMP keyed by type and code, as
  NetFlow does: dport = type * 256 + code), packets and bytes of the inner
  IPv4 packets, first and last seen. Every `flush` seconds the flows seen
  since the last flush go to the log as JSON lines ({"type": "flow"}, with
  their running totals), then one {"type": "counters"} line;
- delivers the inner frame to the endpoint's own stack on eth0, as the
  transit program would have for an endpoint without bypass_decap: it
  sends it into the host's end of the endpoint's veth (`host_iface`, a
  socket opened in the host's namespace before the program enters the
  endpoint's), so it arrives on eth0. The endpoint's services answer as
  usual, and their replies leave through eth0, where the agent
  encapsulates them. Delivering on eth0 rather than on a TAP matters for
  ARP: the answers to the endpoint's own ARP requests come back as tunnel
  packets too, and only on eth0 do they complete its neighbour entries.

Frames on eth0 that are no tunnel packet (addressed to the endpoint's own
MAC or to everyone: the agent's ARP answers, the frames delivered here)
are the stack's and not looked at. The socket reads up to 128 KiB a
frame, so a tunnel frame of any NIC MTU passes, and the endpoint's eth0
has the NIC's MTU (bypass_decap), above any inner frame.

The config (JSON): name, netns (entered at start; null: stay), iface
(eth0), host_iface, vni, ip, mac, log, flush (seconds), ready (a file
written with the process id once the sockets are open).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import array
import ctypes
import json
import os
import select
import signal
import socket
import struct
import sys
import time

GENEVE_PORT = 6081
ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800
ETH_P_ARP = 0x0806
ETH_P_TEB = 0x6558  # Geneve's protocol type for an Ethernet payload
ETH_HLEN = 14
IPV4_HLEN = 20
UDP_HLEN = 8
GENEVE_HLEN = 8
ARP_LEN = 28
PACKET_HOST, PACKET_OTHERHOST, PACKET_OUTGOING = 0, 3, 4
READ_SIZE = 1 << 17  # above the largest IPv4 packet and its Ethernet header
BROADCAST = b"\xff" * 6
PROTOCOLS = {1: "icmp", 6: "tcp", 17: "udp"}

# Why a tunnel frame was dropped, in the order the checks meet them.
DROP_REASONS = (
    "outer_short",        # too short for Ethernet, IPv4, UDP and Geneve headers
    "outer_not_ipv4",     # not IPv4 (a frame to another MAC that is no tunnel packet)
    "outer_ip_header",    # IPv4 version or header length wrong
    "outer_ip_checksum",  # IPv4 header checksum wrong
    "outer_ip_length",    # IPv4 total length beyond the frame or short of its headers
    "outer_fragment",     # a fragment: Geneve is never fragmented here
    "outer_not_udp",
    "outer_not_geneve",   # UDP, but not to port 6081
    "udp_length",         # UDP length not the IPv4 payload's
    "udp_checksum",       # a UDP checksum given, and wrong
    "geneve_version",
    "geneve_control",     # O bit: a control payload, never delivered
    "geneve_critical",    # C bit, or an option of a critical type: none is understood here
    "geneve_options",     # options that overrun their length
    "geneve_protocol",    # not an Ethernet payload
    "vni",                # not the endpoint's VNI: another tenant's
    "inner_short",
    "inner_mac",          # not to the endpoint's MAC (nor broadcast ARP)
    "inner_ethertype",    # neither IPv4 nor ARP
    "inner_ip_header",
    "inner_ip_checksum",
    "inner_ip_length",
    "inner_dst",          # not to the endpoint's address
    "inner_l4",           # a TCP, UDP or ICMP header cut short
    "arp_malformed",
    "arp_target",         # ARP for another address
    "deliver",            # the veth refused the frame
)


class Drop(Exception):
    """A frame that fails a check; reason is one of DROP_REASONS."""

    def __init__(self, reason):
        super(Drop, self).__init__(reason)
        self.reason = reason


# ---------------------------------------------------------------- checksums and addresses

def ones_sum(data):
    """The 16-bit ones' complement sum of data (odd length padded), in
    network order."""
    if len(data) % 2:
        data = bytes(data) + b"\0"
    words = array.array("H", bytes(data))
    if sys.byteorder == "little":
        words.byteswap()
    total = sum(words)
    while total >> 16:
        total = (total & 0xffff) + (total >> 16)
    return total


def checksum(data):
    """The Internet checksum of data (RFC 1071)."""
    return ~ones_sum(data) & 0xffff


def ip_text(raw):
    return socket.inet_ntoa(bytes(raw))


def mac_text(raw):
    return ":".join("%02x" % b for b in bytearray(raw))


def mac_bytes(text):
    parts = text.split(":")
    if len(parts) != 6:
        raise ValueError("%r is not a MAC address" % (text,))
    return bytes(bytearray(int(p, 16) for p in parts))


# ---------------------------------------------------------------- frames

class Tunnel:
    """A tunnel frame that passed every check: its VNI, outer source and
    destination, Geneve options [(class, type, data)], the inner frame
    (without padding), its kind ("ipv4" or "arp"), and for IPv4 the flow
    (protocol, src, dst, sport, dport) and the packet's length."""

    __slots__ = ("vni", "outer_src", "outer_dst", "options", "inner", "kind", "flow", "length")

    def __init__(self, vni, outer_src, outer_dst, options, inner, kind, flow=None, length=0):
        self.vni = vni
        self.outer_src = outer_src
        self.outer_dst = outer_dst
        self.options = options
        self.inner = inner
        self.kind = kind
        self.flow = flow
        self.length = length


def _geneve_options(data):
    """[(class, type, data)] of Geneve option bytes; Drop when they overrun
    or one is critical."""
    options = []
    off = 0
    while off < len(data):
        if off + 4 > len(data):
            raise Drop("geneve_options")
        opt_class, opt_type, lenbyte = struct.unpack_from("!HBB", data, off)
        end = off + 4 + (lenbyte & 0x1f) * 4
        if end > len(data):
            raise Drop("geneve_options")
        if opt_type & 0x80:
            raise Drop("geneve_critical")
        options.append((opt_class, opt_type, bytes(data[off + 4:end])))
        off = end
    return options


def _inner_ipv4(inner, ip):
    """(flow, length, the frame without padding) of an inner IPv4 frame to ip."""
    if len(inner) < ETH_HLEN + IPV4_HLEN:
        raise Drop("inner_short")
    ver_ihl = inner[ETH_HLEN]
    hlen = (ver_ihl & 0x0f) * 4
    if ver_ihl >> 4 != 4 or hlen < IPV4_HLEN or ETH_HLEN + hlen > len(inner):
        raise Drop("inner_ip_header")
    if ones_sum(inner[ETH_HLEN:ETH_HLEN + hlen]) != 0xffff:
        raise Drop("inner_ip_checksum")
    total, frag, proto = struct.unpack_from("!H2xH1xB", inner, ETH_HLEN + 2)
    if total < hlen or ETH_HLEN + total > len(inner):
        raise Drop("inner_ip_length")
    src, dst = inner[ETH_HLEN + 12:ETH_HLEN + 16], inner[ETH_HLEN + 16:ETH_HLEN + 20]
    if dst != ip:
        raise Drop("inner_dst")
    l4 = ETH_HLEN + hlen
    room = total - hlen
    sport = dport = 0
    if frag & 0x1fff == 0:  # the first (or only) fragment carries the transport header
        if proto == 6:
            if room < 20 or (inner[l4 + 12] >> 4) * 4 < 20 or (inner[l4 + 12] >> 4) * 4 > room:
                raise Drop("inner_l4")
            sport, dport = struct.unpack_from("!HH", inner, l4)
        elif proto == 17:
            if room < UDP_HLEN or struct.unpack_from("!H", inner, l4 + 4)[0] > room:
                raise Drop("inner_l4")
            sport, dport = struct.unpack_from("!HH", inner, l4)
        elif proto == 1:
            if room < 4:
                raise Drop("inner_l4")
            dport = inner[l4] * 256 + inner[l4 + 1]
    flow = (proto, ip_text(src), ip_text(dst), sport, dport)
    return flow, total, bytes(inner[:ETH_HLEN + total])


def _inner_arp(inner, ip):
    if len(inner) < ETH_HLEN + ARP_LEN:
        raise Drop("inner_short")
    htype, ptype, hln, pln, op = struct.unpack_from("!HHBBH", inner, ETH_HLEN)
    if (htype, ptype, hln, pln) != (1, ETH_P_IP, 6, 4) or op not in (1, 2):
        raise Drop("arp_malformed")
    if inner[ETH_HLEN + 24:ETH_HLEN + 28] != ip:
        raise Drop("arp_target")
    return bytes(inner[:ETH_HLEN + ARP_LEN])


def parse_tunnel(frame, vni, ip, mac):
    """Check a tunnel frame for the endpoint (vni, ip as 4 bytes, mac as 6
    bytes). Returns a Tunnel; raises Drop naming the first check it fails."""
    frame = bytes(frame)
    if len(frame) < ETH_HLEN + IPV4_HLEN + UDP_HLEN + GENEVE_HLEN:
        raise Drop("outer_short")
    if frame[12:14] != b"\x08\x00":
        raise Drop("outer_not_ipv4")
    ver_ihl = frame[ETH_HLEN]
    hlen = (ver_ihl & 0x0f) * 4
    if ver_ihl >> 4 != 4 or hlen < IPV4_HLEN:
        raise Drop("outer_ip_header")
    if ETH_HLEN + hlen + UDP_HLEN + GENEVE_HLEN > len(frame):
        raise Drop("outer_short")
    if ones_sum(frame[ETH_HLEN:ETH_HLEN + hlen]) != 0xffff:
        raise Drop("outer_ip_checksum")
    total, frag, proto = struct.unpack_from("!H2xH1xB", frame, ETH_HLEN + 2)
    if total < hlen + UDP_HLEN + GENEVE_HLEN or ETH_HLEN + total > len(frame):
        raise Drop("outer_ip_length")
    if frag & 0x3fff:
        raise Drop("outer_fragment")
    if proto != 17:
        raise Drop("outer_not_udp")
    udp = ETH_HLEN + hlen
    dport, ulen, ucsum = struct.unpack_from("!2xHHH", frame, udp)
    if dport != GENEVE_PORT:
        raise Drop("outer_not_geneve")
    end = ETH_HLEN + total
    if ulen != total - hlen:
        raise Drop("udp_length")
    if ucsum:
        pseudo = bytes(frame[ETH_HLEN + 12:ETH_HLEN + 20]) + struct.pack("!BBH", 0, 17, ulen)
        if ones_sum(pseudo + bytes(frame[udp:end])) != 0xffff:
            raise Drop("udp_checksum")
    gen = udp + UDP_HLEN
    b0, b1, ptype, vni_word = struct.unpack_from("!BBHI", frame, gen)
    if b0 >> 6:
        raise Drop("geneve_version")
    if b1 & 0x80:
        raise Drop("geneve_control")
    if b1 & 0x40:
        raise Drop("geneve_critical")
    optlen = (b0 & 0x3f) * 4
    if gen + GENEVE_HLEN + optlen > end:
        raise Drop("geneve_options")
    options = _geneve_options(frame[gen + GENEVE_HLEN:gen + GENEVE_HLEN + optlen])
    if ptype != ETH_P_TEB:
        raise Drop("geneve_protocol")
    if vni_word >> 8 != vni:
        raise Drop("vni")
    inner = frame[gen + GENEVE_HLEN + optlen:end]
    if len(inner) < ETH_HLEN:
        raise Drop("inner_short")
    ethertype = inner[12:14]
    outer_src, outer_dst = ip_text(frame[ETH_HLEN + 12:ETH_HLEN + 16]), ip_text(frame[ETH_HLEN + 16:ETH_HLEN + 20])
    if ethertype == b"\x08\x06":
        if inner[0:6] not in (mac, BROADCAST):
            raise Drop("inner_mac")
        return Tunnel(vni, outer_src, outer_dst, options, _inner_arp(inner, ip), "arp")
    if inner[0:6] != mac:
        raise Drop("inner_mac")
    if ethertype != b"\x08\x00":
        raise Drop("inner_ethertype")
    flow, length, plain = _inner_ipv4(inner, ip)
    return Tunnel(vni, outer_src, outer_dst, options, plain, "ipv4", flow, length)


# ---------------------------------------------------------------- building frames (tests, benchmarks)

def ethernet(dst, src, ethertype, payload):
    return mac_bytes(dst) + mac_bytes(src) + struct.pack("!H", ethertype) + payload


def ipv4(src, dst, proto, payload, ttl=64, ident=0, frag=0, tos=0):
    """An IPv4 packet with a correct header checksum."""
    header = struct.pack("!BBHHHBBH4s4s", 0x45, tos, IPV4_HLEN + len(payload), ident, frag, ttl, proto, 0,
                         socket.inet_aton(src), socket.inet_aton(dst))
    csum = checksum(header)
    return header[:10] + struct.pack("!H", csum) + header[12:] + payload


def udp(sport, dport, payload, src=None, dst=None):
    """A UDP datagram; with src and dst (IPv4 addresses) its checksum is
    computed, otherwise it is 0 (none, as IPv4 allows)."""
    length = UDP_HLEN + len(payload)
    datagram = struct.pack("!HHHH", sport, dport, length, 0) + payload
    if src is None:
        return datagram
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 17, length)
    csum = checksum(pseudo + datagram) or 0xffff
    return datagram[:6] + struct.pack("!H", csum) + datagram[8:]


def arp(op, sender_mac, sender_ip, target_mac, target_ip):
    return struct.pack("!HHBBH6s4s6s4s", 1, ETH_P_IP, 6, 4, op, mac_bytes(sender_mac), socket.inet_aton(sender_ip),
                       mac_bytes(target_mac), socket.inet_aton(target_ip))


def geneve(vni, payload, options=(), control=False, critical=False, protocol=ETH_P_TEB):
    """A Geneve header (version 0) with options [(class, type, data)]
    (data a multiple of 4 bytes), then payload."""
    opts = b"".join(struct.pack("!HBB", c, t, len(d) // 4) + d for c, t, d in options)
    flags = (0x80 if control else 0) | (0x40 if critical else 0)
    return struct.pack("!BBHI", len(opts) // 4, flags, protocol, vni << 8) + opts + payload


def tunnel_frame(inner, vni, outer_src, outer_dst, src_mac, dst_mac, options=(), sport=49152, **geneve_args):
    """A whole tunnel frame as the transit program bypasses it: Ethernet,
    IPv4, UDP to 6081 (checksum 0), Geneve, the inner frame."""
    payload = udp(sport, GENEVE_PORT, geneve(vni, inner, options, **geneve_args))
    return ethernet(dst_mac, src_mac, ETH_P_IP, ipv4(outer_src, outer_dst, 17, payload))


# ---------------------------------------------------------------- flows

class FlowTable:
    """Running totals per flow, and the ones changed since the last flush."""

    def __init__(self, name):
        self.name = name
        self.flows = {}  # key -> record
        self.dirty = set()

    def add(self, tunnel, now):
        key = (tunnel.vni, tunnel.outer_src) + tunnel.flow
        rec = self.flows.get(key)
        if rec is None:
            proto = tunnel.flow[0]
            rec = self.flows[key] = {
                "type": "flow", "function": self.name, "vni": tunnel.vni, "outer_src": tunnel.outer_src,
                "proto": PROTOCOLS.get(proto, proto), "src": tunnel.flow[1], "dst": tunnel.flow[2],
                "sport": tunnel.flow[3], "dport": tunnel.flow[4], "packets": 0, "bytes": 0, "first": now,
                "last": now, "options": []}
        rec["packets"] += 1
        rec["bytes"] += tunnel.length
        rec["last"] = now
        if tunnel.options:
            rec["options"] = [{"class": c, "type": t, "data": d.hex()} for c, t, d in tunnel.options]
        self.dirty.add(key)

    def take(self):
        """The records changed since the last call, in a stable order."""
        out = [self.flows[k] for k in sorted(self.dirty, key=str)]
        self.dirty = set()
        return out


class Counters:
    """What happened to the tunnel frames read: delivered (IPv4 and ARP),
    dropped by reason."""

    def __init__(self):
        self.values = dict(frames=0, delivered=0, arp=0, log_errors=0)
        self.drops = dict((r, 0) for r in DROP_REASONS)

    def record(self, name, now):
        return dict(self.values, type="counters", function=name, time=now,
                    drops=dict((r, n) for r, n in self.drops.items() if n))


def log_lines(flows, counters, name, now):
    """The JSON lines of one flush."""
    return "".join(json.dumps(r, sort_keys=True) + "\n" for r in flows + [counters.record(name, now)])


# ---------------------------------------------------------------- the host side

CLONE_NEWNET = 0x40000000


def enter_netns(netns):
    """Move this process into the network namespace /run/netns/<netns>."""
    fd = os.open(netns if netns.startswith("/") else "/run/netns/" + netns, os.O_RDONLY)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.setns(fd, CLONE_NEWNET):
            raise OSError(ctypes.get_errno(), "setns into %s: %s" % (netns, os.strerror(ctypes.get_errno())))
    finally:
        os.close(fd)


def packet_socket(iface, protocol):
    """A raw packet socket on iface, receiving protocol (0: none, send only)."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(protocol))
    sock.bind((iface, protocol))
    return sock


class Flowlog:
    """The running function: its sockets, flows and counters."""

    def __init__(self, config):
        self.config = config
        self.name = config["name"]
        self.vni = int(config["vni"])
        self.ip = socket.inet_aton(config["ip"])
        self.mac = mac_bytes(config["mac"])
        self.iface = config.get("iface") or "eth0"
        self.log = config["log"]
        self.interval = float(config.get("flush") or 1.0)
        self.flows = FlowTable(self.name)
        self.counters = Counters()
        self.stop = False
        self.sock = self.out = None

    def setup(self):
        # the host's end of the veth, opened where it lives: the socket
        # keeps that namespace when the process moves to the endpoint's
        self.out = packet_socket(self.config["host_iface"], 0)
        if self.config.get("netns"):
            enter_netns(self.config["netns"])
        self.sock = packet_socket(self.iface, ETH_P_ALL)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        directory = os.path.dirname(self.log)
        if directory and not os.path.isdir(directory):
            os.makedirs(directory, 0o755)
        if self.config.get("ready"):
            with open(self.config["ready"], "w") as f:
                f.write("%d\n" % os.getpid())

    def handle(self, frame, pkttype, now):
        """One frame read from eth0: a tunnel packet (to another MAC than
        the endpoint's) is checked, counted, logged and delivered."""
        if pkttype != PACKET_OTHERHOST:
            return  # the stack's own, or what the endpoint sends
        c = self.counters
        c.values["frames"] += 1
        try:
            tun = parse_tunnel(frame, self.vni, self.ip, self.mac)
        except Drop as d:
            c.drops[d.reason] += 1
            return
        try:
            self.out.send(tun.inner)
        except OSError:
            c.drops["deliver"] += 1
            return
        if tun.kind == "arp":
            c.values["arp"] += 1
        else:
            c.values["delivered"] += 1
            self.flows.add(tun, now)

    def flush(self, now):
        text = log_lines(self.flows.take(), self.counters, self.name, now)
        try:
            with open(self.log, "a") as f:  # opened each time: a rotated log is picked up
                f.write(text)
        except OSError as e:
            self.counters.values["log_errors"] += 1
            sys.stderr.write("flowlog %s: cannot write %s: %s\n" % (self.name, self.log, e))

    def run(self):
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        self.setup()
        due = time.time() + self.interval
        while not self.stop:
            try:
                ready = select.select([self.sock], [], [], max(0.0, due - time.time()))[0]
            except InterruptedError:
                continue
            now = time.time()
            if ready:
                for dummy in range(64):  # a batch, then look at the clock again
                    try:
                        frame, where = self.sock.recvfrom(READ_SIZE, socket.MSG_DONTWAIT)
                    except BlockingIOError:
                        break
                    self.handle(frame, where[2], now)
            if now >= due:
                self.flush(now)
                due = now + self.interval
        self.flush(time.time())

    def _stop(self, signum, frame):
        self.stop = True


def main(argv):
    if len(argv) != 2:
        sys.stderr.write("usage: %s CONFIG.json\n" % argv[0])
        return 2
    with open(argv[1]) as f:
        config = json.load(f)
    Flowlog(config).run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
